/* sesame-testdns: the test DNS server as a program, for end-to-end tests.
 *   sesame-testdns ZONE.json [--port N] [--ttl N]
 * Prints "127.0.0.1:PORT" on stdout once it answers, reloads ZONE.json on
 * SIGHUP (keeping the old zone if the new one does not load), exits 0 on
 * SIGTERM or SIGINT. Errors go to stderr, exit status 1 (2 for bad usage). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns/dns_zone.h"
#include "testdns.h"

static int usage(void)
{
    fprintf(stderr, "usage: sesame-testdns ZONE.json [--port N] [--ttl N]\n");
    return 2;
}

static int parse_num(const char *s, unsigned long max, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || v > max || s[0] == '-')
        return -1;
    *out = v;
    return 0;
}

static struct dns_zone *load(const char *path)
{
    char err[512];
    struct dns_zone *z = dns_zone_new();
    if (!z) {
        fprintf(stderr, "sesame-testdns: out of memory\n");
        return NULL;
    }
    if (dns_zone_load_file(z, path, err, sizeof(err)) != 0) {
        fprintf(stderr, "sesame-testdns: %s\n", err);
        dns_zone_free(z);
        return NULL;
    }
    return z;
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    unsigned long port = 0, ttl = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            if (parse_num(argv[++i], 65535, &port) != 0)
                return usage();
        } else if (strcmp(argv[i], "--ttl") == 0 && i + 1 < argc) {
            if (parse_num(argv[++i], 0x7fffffffUL, &ttl) != 0)
                return usage();
        } else if (argv[i][0] == '-' || path) {
            return usage();
        } else {
            path = argv[i];
        }
    }
    if (!path)
        return usage();

    /* Signals are taken synchronously by sigwait() below; block them before
     * the server thread starts so it inherits the mask. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    struct dns_zone *zone = load(path);
    if (!zone)
        return 1;
    struct testdns *t = testdns_start_on(zone, (unsigned short)port);
    if (!t) {
        fprintf(stderr, "sesame-testdns: cannot listen on 127.0.0.1:%lu: %s\n", port,
                strerror(errno));
        dns_zone_free(zone);
        return 1;
    }
    testdns_set_ttl(t, (uint32_t)ttl);
    printf("%s\n", testdns_addr(t));
    fflush(stdout);

    for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            struct dns_zone *fresh = load(path);
            if (fresh) {
                testdns_set_zone(t, fresh);
                dns_zone_free(zone);
                zone = fresh;
                fprintf(stderr, "sesame-testdns: reloaded %s\n", path);
            }
            continue;
        }
        break;
    }
    testdns_stop(t);
    dns_zone_free(zone);
    return 0;
}
