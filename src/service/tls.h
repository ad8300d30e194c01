/* TLS for the listeners: the server SSL_CTX (TLS 1.2+, the certificate and
 * key from [tls], or a self-signed pair generated once into
 * data_dir/tls/ with mode 0600 when none is configured) and a client
 * SSL_CTX for webhooks. */
#ifndef SESAME_SERVICE_TLS_H
#define SESAME_SERVICE_TLS_H
#include <openssl/ssl.h>
#include <stddef.h>

/* cert/key "" = data_dir/tls/{cert,key}.pem, generated (P-256, 10 years,
 * CN and subjectAltName = hostname) when absent. NULL with err on failure. */
SSL_CTX *tls_server_ctx(const char *cert, const char *key, const char *data_dir,
                        const char *hostname, char *err, size_t errlen);
/* Verifies peers against the system CA store. */
SSL_CTX *tls_client_ctx(char *err, size_t errlen);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384" for Received headers and logs. */
void tls_describe(const SSL *ssl, char *out, size_t outlen);

#endif
