/* What the service's parts share: the service itself, one SMTP connection,
 * and the two policies (inbound MX, submission) that plug into the session
 * hooks. Not for use outside src/service. */
#ifndef SESAME_SERVICE_SERVICE_INTERNAL_H
#define SESAME_SERVICE_SERVICE_INTERNAL_H
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "auth/dkim.h"
#include "auth/spf.h"
#include "dns/dns.h"
#include "service/accounts.h"
#include "service/api.h"
#include "service/config.h"
#include "service/group_commit.h"
#include "service/metrics.h"
#include "service/outbound.h"
#include "service/delivery.h"
#include "service/ratelimit.h"
#include "service/webhook.h"
#include "service/workq.h"
#include "smtp/smtp_session.h"
#include "store/store.h"

enum conn_role { ROLE_MX = 0, ROLE_SUBMISSION = 1 };

struct conn;
TAILQ_HEAD(conn_list, conn);

/* connections per client IP: a small chained hash table */
struct ip_count {
    struct ip_count *next;
    unsigned count;
    char ip[STORE_IP_MAX];
};
#define IP_BUCKETS 1024

struct service_metrics {
    struct metric *conn_total[2], *conn_open[2], *conn_refused_limit;
    struct metric *msg_accepted[2], *msg_rejected_relay, *msg_rejected_dmarc,
        *msg_rejected_rule, *msg_rejected_sender, *msg_tempfail, *msg_dropped_rule,
        *msg_quarantined, *feedback[4];
    struct metric *auth_ok, *auth_failed, *auth_blocked;
    struct metric *spf[7], *dkim_pass, *dkim_fail, *dkim_none, *dmarc_pass, *dmarc_fail,
        *dmarc_none;
    struct metric *data_latency[2];
};

struct service {
    struct sesame_config cfg;            /* the loop thread's; SIGHUP updates it */
    struct sesame_config http_cfg;       /* read by the HTTP lanes; fixed at start */
    char config_path[CONFIG_STR_MAX];
    struct event_base *base;
    SSL_CTX *tls;
    struct dns_resolver *dns;
    struct dkim_keycache *keycache;
    struct store *st;                    /* the loop thread's connection */
    struct cred_cache *creds;
    struct authfail_limiter *authfail;
    struct metrics *metrics;
    struct service_metrics m;
    struct webhook_client *webhooks;
    SSL_CTX *client_tls;
    struct http_server *http;
    struct workq *workq;
    struct group_commit *gc;             /* the workers' store writes */
    struct outbound *outbound;           /* accepting mail to send (API, submission) */
    struct delivery *delivery;           /* the delivery thread */
    struct identity_checker *checker;    /* the identities' background DNS checks */
    struct dmarc_reporter *reporter;     /* DMARC aggregate reports, as a receiver */
    struct evconnlistener *listeners[2];
    struct event *sig_term, *sig_int, *sig_hup, *drain_timer;
    struct conn_list conns;
    unsigned nconns;
    struct ip_count *ip_table[IP_BUCKETS];
    bool stopping;
    int exit_code;
};

struct conn {
    TAILQ_ENTRY(conn) entry;
    struct service *svc;
    enum conn_role role;
    struct bufferevent *bev;
    struct smtp_session *sess;
    struct event *total_timer;
    char ip[STORE_IP_MAX];
    struct spf_ip addr;
    bool loopback;
    bool closing;                /* close once the output is flushed */
    bool job_pending;            /* a worker job refers to this conn */
    bool dead;                   /* the peer went away while a job ran */
    bool want_tls;               /* STARTTLS answered: switch once input is drained */
    char tls_desc[96];
    uint64_t id;                 /* for logs and queue ids */
    /* MX: the account of the first accepted recipient */
    int64_t rcpt_account;
    /* MX: the transaction is feedback (a DSN or ARF report) to the VERP
     * address of this outbound recipient row */
    int64_t feedback_rcpt;
    /* submission: the authenticated account */
    bool authed;
    struct store_account account;
};

/* smtp_conn.c */
int conn_listeners_start(struct service *svc, char *err, size_t errlen);
void conn_listeners_stop(struct service *svc);
void conn_shutdown_all(struct service *svc);
/* Feeds buffered input again (after a job answered). */
void conn_resume(struct conn *c);
/* After a job: frees the conn if it died meanwhile; returns true if so. */
bool conn_release_job(struct conn *c);

/* inbound.c and submission.c: the session hooks of each role */
void inbound_hooks(struct conn *c, struct smtp_hooks *h);
void submission_hooks(struct conn *c, struct smtp_hooks *h);

/* feedback.c: the end of DATA of a report to a VERP address (takes msg) */
void feedback_submit(struct conn *c, const char *mail_from, char *msg, size_t len);

/* service.c */
void service_metrics_init(struct service *svc);
/* A message id for logs and the 250 reply: hex of conn id and a counter. */
void service_queue_id(struct conn *c, char *out, size_t outlen);

#endif
