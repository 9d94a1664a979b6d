/* xzcat with polymr's own decoder: decompresses each .xz file named on the command line to
 * stdout, like `xz -dc FILES`, but linked against the liblzma that polymr's binary embeds
 * (liblzma-sys bundles xz 5.8; Debian 12's xz-utils is 5.4.1, whose decoder is slower).
 * A pipeline `xzcat FILES | mapper` is then the same decompression work as `polymr map` with
 * no driver in between: the difference is the driver's overhead alone.
 *
 * Same I/O as xz-utils' `xz -dc` (file_io.h: IO_BUFFER_SIZE 8192): 8 KiB reads and 8 KiB
 * writes, so this differs from `xz -dc` only by the liblzma version. (With 64 KiB writes into
 * the 64 KiB pipe, decompression and a Python mapper were seen to take turns.)
 * Build (bench/run.sh does it):
 *   cc -O2 -I REGISTRY/liblzma-sys-VERSION/xz/src/liblzma/api -o xzcat xzcat.c \
 *      target/release/build/liblzma-sys-HASH/out/liblzma.a -lpthread
 */
#include <errno.h>
#include <fcntl.h>
#include <lzma.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define BUF 8192

static int write_all(const uint8_t *p, size_t n) {
    while (n) {
        ssize_t w = write(1, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int cat_one(const char *path) {
    static uint8_t in[BUF], out[BUF];
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        perror(path);
        return 1;
    }
    lzma_stream s = LZMA_STREAM_INIT;
    if (lzma_stream_decoder(&s, UINT64_MAX, LZMA_CONCATENATED) != LZMA_OK) {
        fprintf(stderr, "%s: lzma_stream_decoder failed\n", path);
        return 1;
    }
    lzma_action action = LZMA_RUN;
    s.next_out = out;
    s.avail_out = BUF;
    int rc = 0;
    for (;;) {
        if (s.avail_in == 0 && action == LZMA_RUN) {
            ssize_t n = read(fd, in, BUF);
            if (n < 0) {
                perror(path);
                rc = 1;
                break;
            }
            s.next_in = in;
            s.avail_in = (size_t)n;
            if (n == 0) action = LZMA_FINISH;
        }
        lzma_ret r = lzma_code(&s, action);
        if (s.avail_out == 0 || r == LZMA_STREAM_END) {
            if (write_all(out, BUF - s.avail_out) != 0) {
                perror("write");
                rc = 1;
                break;
            }
            s.next_out = out;
            s.avail_out = BUF;
        }
        if (r == LZMA_STREAM_END) break;
        if (r != LZMA_OK) {
            fprintf(stderr, "%s: decode error %d\n", path, (int)r);
            rc = 1;
            break;
        }
    }
    lzma_end(&s);
    close(fd);
    return rc;
}

int main(int argc, char **argv) {
    int rc = 0;
    for (int i = 1; i < argc; i++) rc |= cat_one(argv[i]);
    return rc;
}
