/* libFuzzer target: the configuration parser (libinih plus the typed key
 * table) on arbitrary bytes. What it accepts must be a usable
 * configuration: values inside their ranges, strings terminated, listen
 * addresses that parse again to the same thing. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "service/config.h"

static void check_listen(const struct config_listen *l)
{
    if (!memchr(l->text, '\0', sizeof l->text) || !memchr(l->host, '\0', sizeof l->host))
        __builtin_trap();
    struct config_listen again;
    if (config_parse_listen(l->text, &again) != 0 || again.port != l->port ||
        strcmp(again.host, l->host) != 0)
        __builtin_trap();
    if (l->text[0] && (l->port < 1 || l->port > 65535))
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sesame_config c;
    char err[256];
    if (config_load_string(&c, "fuzz.conf", (const char *)data, size, err, sizeof err) != 0) {
        if (strncmp(err, "fuzz.conf:", 10) != 0)
            __builtin_trap();
        return 0;
    }
    check_listen(&c.mx);
    check_listen(&c.submission);
    check_listen(&c.http);
    if (!c.hostname[0] || !c.data_dir[0] || !c.store[0] || c.workers < 1 ||
        c.delivery_smtp_port < 1 || c.delivery_smtp_port > 65535 || c.max_recipients < 1 ||
        c.max_message_size < 65536 || (!c.tls_cert[0]) != (!c.tls_key[0]))
        __builtin_trap();
    const char *strs[] = { c.hostname, c.data_dir, c.store, c.tls_cert, c.tls_key,
                           c.dns_servers, c.delivery_relay, c.log_level };
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        for (const char *p = strs[i]; *p; p++)
            if ((unsigned char)*p < 0x20)
                __builtin_trap();
    return 0;
}
