/* The one-flag-per-write client of bench_submit: the cheapest load generator, so that a
 * round trip measures the server and the machine, not Python. Connects from SOURCE to
 * 127.0.0.1:PORT, reads a greeting of GREETING_LINES lines, then sends each line of stdin
 * on its own and waits for its reply line before the next. Prints round trips per second
 * and how many replies said " OK ".
 *
 * usage: line_client PORT SOURCE GREETING_LINES < lines */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define MAX_LINES 100000
#define LINE 256

static char lines[MAX_LINES][LINE];

static int fail(const char *what) {
    perror(what);
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s PORT SOURCE GREETING_LINES < lines\n", argv[0]);
        return 2;
    }
    int count = 0;
    while (count < MAX_LINES && fgets(lines[count], LINE, stdin)) count++;
    int sock = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in source = {.sin_family = AF_INET}, server = {.sin_family = AF_INET};
    server.sin_port = htons((unsigned short)atoi(argv[1]));
    server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (sock < 0 || inet_pton(AF_INET, argv[2], &source.sin_addr) != 1) return fail("source");
    if (bind(sock, (struct sockaddr *)&source, sizeof source)) return fail("bind");
    if (connect(sock, (struct sockaddr *)&server, sizeof server)) return fail("connect");
    setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char reply[65536];
    for (int seen = 0, wanted = atoi(argv[3]); seen < wanted;) {
        ssize_t got = recv(sock, reply, sizeof reply, 0);
        if (got <= 0) return fail("greeting");
        for (ssize_t i = 0; i < got; i++) seen += reply[i] == '\n';
    }
    long ok = 0;
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (int i = 0; i < count; i++) {
        size_t size = strlen(lines[i]);
        if (send(sock, lines[i], size, 0) != (ssize_t)size) return fail("send");
        for (size_t held = 0;;) {  /* until the reply line is complete */
            ssize_t got = recv(sock, reply + held, sizeof reply - 1 - held, 0);
            if (got <= 0) return fail("reply");
            held += (size_t)got;
            if (reply[held - 1] != '\n' && held == sizeof reply - 1) held = 0;  /* no line is this long */
            else if (reply[held - 1] == '\n') {
                reply[held] = 0;
                ok += strstr(reply, " OK ") != NULL;
                break;
            }
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &end);
    double took = (double)(end.tv_sec - start.tv_sec) + (double)(end.tv_nsec - start.tv_nsec) / 1e9;
    printf("%.1f %ld\n", count / took, ok);
    return 0;
}
