/* ssl-caller: calls a function of uWSGI's SSL support without asking whether
 * the uWSGI has it (no #ifdef UWSGI_SSL): a build for a uWSGI without SSL
 * would never load. */
#include <uwsgi.h>

static void sslcaller_init(void) {
	char *bytes = uwsgi_ssl_rand(16);
	free(bytes);
}

struct uwsgi_plugin sslcaller_plugin = {
	.name = "sslcaller",
	.init = (int (*)(void)) sslcaller_init,
};
