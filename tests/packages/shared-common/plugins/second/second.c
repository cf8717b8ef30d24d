/* Written for uWSGI's own tree: uwsgi.h two levels up; the project's common/ header beside it. */
#include "../../uwsgi.h"
#include "../../common/shared.h"

static int second_request(struct wsgi_request *wsgi_req) {
	if (uwsgi_parse_vars(wsgi_req)) return -1;
	uwsgi_response_prepare_headers(wsgi_req, "200 OK", 6);
	uwsgi_response_write_body_do(wsgi_req, "second+" SHARED_WORD, strlen("second+" SHARED_WORD));
	return UWSGI_OK;
}

struct uwsgi_plugin second_plugin = {
	.name = "second",
	.modifier1 = 241,
	.request = second_request,
};
