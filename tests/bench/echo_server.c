/* The round-trip floor of this machine for bench_submit: a C server that echoes each read
 * back at once (no judging at all), one connection at a time. Prints its port, then serves
 * until killed; its CPU is read from /proc like the submit-server's. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

int main(void) {
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t size = sizeof address;
    if (listener < 0 || bind(listener, (struct sockaddr *)&address, size) || listen(listener, 16) ||
        getsockname(listener, (struct sockaddr *)&address, &size)) {
        perror("echo_server");
        return 1;
    }
    printf("%d\n", ntohs(address.sin_port));
    fflush(stdout);
    char buffer[65536];
    for (;;) {
        int conn = accept(listener, NULL, NULL);
        if (conn < 0) continue;
        for (ssize_t got; (got = recv(conn, buffer, sizeof buffer, 0)) > 0;)
            if (send(conn, buffer, (size_t)got, 0) != got) break;
        close(conn);
    }
}
