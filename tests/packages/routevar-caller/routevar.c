/* routevar-caller: registers a route variable at init, with uwsgi_register_route_var, which
 * uwsgi.h declares whatever the features and only a uWSGI with routing defines (no #ifdef
 * UWSGI_ROUTING here): a build for a uWSGI without routing would never load. */
#include <uwsgi.h>

static char *routevar_value(struct wsgi_request *wsgi_req, char *key, uint16_t keylen, uint16_t *vallen) {
	*vallen = 0;
	return NULL;
}

static int routevar_init(void) {
	uwsgi_register_route_var("routevar", routevar_value);
	return 0;
}

struct uwsgi_plugin routevar_plugin = {
	.name = "routevar",
	.init = routevar_init,
};
