/* Written for uWSGI's own source tree (plugins/intree/): uwsgi.h is two levels up. */
#include "../../uwsgi.h"

static int intree_request(struct wsgi_request *wsgi_req) {
	if (uwsgi_parse_vars(wsgi_req)) return -1;
	uwsgi_response_prepare_headers(wsgi_req, "200 OK", 6);
	uwsgi_response_write_body_do(wsgi_req, "in-tree plugin", 14);
	return UWSGI_OK;
}

struct uwsgi_plugin intree_plugin = {
	.name = "intree",
	.modifier1 = 252,
	.request = intree_request,
};
