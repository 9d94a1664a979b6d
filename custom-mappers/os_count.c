/* Count pings per operating system -- a native mapper, Hadoop Streaming style.
 *
 * Reads "<uuid>\t<json>" records, one per line, on stdin and prints "<OS>\t1"
 * for each record that contains "OS":"<value>". It does not parse JSON: it looks
 * for the text "OS":" and copies what follows up to the next unescaped quote.
 * Lines of any length are handled (the buffer grows as needed). Records without
 * the field are skipped and counted; the count is reported on stderr as a Hadoop
 * Streaming counter: reporter:counter:os_count,lines_without_os,N
 *
 * Build: cc -O2 -Wall -o os_count_c os_count.c   (or: make native)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char NEEDLE[] = "\"OS\":\"";
#define NEEDLE_LEN (sizeof NEEDLE - 1)

static char obuf[1 << 16];
static size_t olen;

static void out_flush(void) {
    if (olen && fwrite(obuf, 1, olen, stdout) != olen) {
        perror("os_count_c: write");
        exit(1);
    }
    olen = 0;
}

static void out_write(const char *p, size_t n) {
    if (n > sizeof obuf - olen) {
        out_flush();
        if (n > sizeof obuf) {
            if (fwrite(p, 1, n, stdout) != n) {
                perror("os_count_c: write");
                exit(1);
            }
            return;
        }
    }
    memcpy(obuf + olen, p, n);
    olen += n;
}

/* Finds NEEDLE in [p, end); returns a pointer just past it, or NULL. */
static const char *find_os(const char *p, const char *end) {
    while ((size_t)(end - p) >= NEEDLE_LEN) {
        const char *q = memchr(p, '"', (size_t)(end - p) - (NEEDLE_LEN - 1));
        if (!q) return NULL;
        if (memcmp(q, NEEDLE, NEEDLE_LEN) == 0) return q + NEEDLE_LEN;
        p = q + 1;
    }
    return NULL;
}

/* Processes one record [p, end) (no newline). Returns 1 if it had an OS. */
static int map_line(const char *p, const char *end) {
    const char *v = find_os(p, end);
    if (!v) return 0;
    const char *q = v;
    for (;;) {
        q = memchr(q, '"', (size_t)(end - q));
        if (!q) return 0;
        if (q[-1] != '\\') break; /* a quote preceded by a backslash is inside the value */
        q++;
    }
    out_write(v, (size_t)(q - v));
    out_write("\t1\n", 3);
    return 1;
}

int main(void) {
    size_t cap = 1 << 20, len = 0; /* buf holds `len` bytes not yet mapped */
    char *buf = malloc(cap);
    long long skipped = 0;
    if (!buf) {
        perror("os_count_c");
        return 1;
    }
    for (;;) {
        if (len == cap) { /* one line fills the buffer: grow it */
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                perror("os_count_c");
                return 1;
            }
            buf = nb;
            cap *= 2;
        }
        size_t n = fread(buf + len, 1, cap - len, stdin);
        if (n == 0 && ferror(stdin)) {
            perror("os_count_c: read");
            return 1;
        }
        int eof = n == 0;
        len += n;
        const char *p = buf, *end = buf + len;
        for (;;) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            if (!nl) {
                if (!eof || p == end) break;
                nl = end; /* the last line, without a newline */
            }
            if (nl > p && !map_line(p, nl)) /* an empty line is no record */
                skipped++;
            p = nl == end ? end : nl + 1;
        }
        len = (size_t)(end - p);
        if (eof) break;
        memmove(buf, p, len);
    }
    out_flush();
    if (fflush(stdout) != 0) {
        perror("os_count_c: write");
        return 1;
    }
    if (skipped) fprintf(stderr, "reporter:counter:os_count,lines_without_os,%lld\n", skipped);
    free(buf);
    return 0;
}
