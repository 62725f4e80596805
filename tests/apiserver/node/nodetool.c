/*
 * nodetool: the one static program in the test bed's images (built with `gcc -static`).
 *
 *   nodetool pause                  the pod sandbox's process: sleeps until SIGTERM/SIGINT,
 *                                   reaping children (it is PID 1 of the pod)
 *   nodetool probe HOST PORT TEXT   connects to HOST:PORT (an IPv4 literal), sends an HTTP/1.0
 *                                   request for /, and exits 0 when TEXT occurs in the first
 *                                   64 KiB of the answer, 1 otherwise (each step prints why)
 *   nodetool serve PORT             a tiny HTTP server: answers every request with
 *                                   "signet-nodetool <hostname>\n" (the Pod's name)
 *
 * Invoked as `pause` (argv[0]'s base name) it behaves as `nodetool pause`.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_stop(int sig) { (void)sig; stop = 1; }
static void on_child(int sig) {
  (void)sig;
  int saved = errno;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
  errno = saved;
}

static int run_pause(void) {
  struct sigaction sa = {0};
  sa.sa_handler = on_stop;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sa.sa_handler = on_child;
  sa.sa_flags = SA_NOCLDSTOP;
  sigaction(SIGCHLD, &sa, NULL);
  while (!stop) pause();
  return 0;
}

static int parse_port(const char *text) {
  char *end;
  long port = strtol(text, &end, 10);
  if (*text == '\0' || *end != '\0' || port < 1 || port > 65535) return -1;
  return (int)port;
}

static int run_probe(const char *host, const char *port_text, const char *expect) {
  struct sockaddr_in addr = {0};
  int port = parse_port(port_text);
  addr.sin_family = AF_INET;
  if (port < 0 || inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
    fprintf(stderr, "probe: bad address %s:%s\n", host, port_text);
    return 2;
  }
  addr.sin_port = htons((unsigned short)port);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct timeval timeout = {10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
    printf("probe: connect %s:%d: %s\n", host, port, strerror(errno));
    return 1;
  }
  static const char request[] = "GET / HTTP/1.0\r\nHost: probe\r\n\r\n";
  if (write(fd, request, sizeof request - 1) != (ssize_t)(sizeof request - 1)) {
    printf("probe: write: %s\n", strerror(errno));
    return 1;
  }
  static char answer[65536];
  size_t used = 0;
  for (;;) {
    ssize_t n = read(fd, answer + used, sizeof answer - 1 - used);
    if (n <= 0) break;
    used += (size_t)n;
    if (used == sizeof answer - 1) break;
  }
  answer[used] = '\0';
  close(fd);
  if (strstr(answer, expect) == NULL) {
    printf("probe: %s:%d answered %zu bytes without \"%s\"\n", host, port, used, expect);
    return 1;
  }
  printf("probe: %s:%d answered with \"%s\"\n", host, port, expect);
  return 0;
}

static int run_serve(const char *port_text) {
  int port = parse_port(port_text);
  if (port < 0) {
    fprintf(stderr, "serve: bad port %s\n", port_text);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa = {0};
  sa.sa_handler = on_stop;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {0};
  addr.sin_family = AF_INET;
  addr.sin_port = htons((unsigned short)port);
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 16) != 0) {
    fprintf(stderr, "serve: listen on %d: %s\n", port, strerror(errno));
    return 1;
  }
  char host[256] = "unknown";
  gethostname(host, sizeof host - 1);
  char body[320];
  int body_len = snprintf(body, sizeof body, "signet-nodetool %s\n", host);
  char reply[512];
  int reply_len = snprintf(reply, sizeof reply,
                           "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                           "Connection: close\r\n\r\n%s",
                           body_len, body);
  printf("serve: listening on %d as %s\n", port, host);
  fflush(stdout);
  while (!stop) {
    int conn = accept(fd, NULL, NULL);
    if (conn < 0) continue;
    struct timeval timeout = {5, 0};
    setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    /* Read (at most 8 KiB of) the request head, then answer and close. */
    char request[8192];
    size_t used = 0;
    while (used < sizeof request - 1) {
      ssize_t n = read(conn, request + used, sizeof request - 1 - used);
      if (n <= 0) break;
      used += (size_t)n;
      request[used] = '\0';
      if (strstr(request, "\r\n\r\n") != NULL) break;
    }
    if (write(conn, reply, (size_t)reply_len) < 0) {
      /* the client went away: nothing to do */
    }
    close(conn);
  }
  return 0;
}

int main(int argc, char **argv) {
  const char *self = strrchr(argv[0], '/');
  self = self ? self + 1 : argv[0];
  if (strcmp(self, "pause") == 0 || (argc == 2 && strcmp(argv[1], "pause") == 0)) return run_pause();
  if (argc == 5 && strcmp(argv[1], "probe") == 0) return run_probe(argv[2], argv[3], argv[4]);
  if (argc == 3 && strcmp(argv[1], "serve") == 0) return run_serve(argv[2]);
  fprintf(stderr, "usage: nodetool pause | probe HOST PORT TEXT | serve PORT\n");
  return 2;
}
