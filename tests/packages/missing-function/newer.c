/* Calls a uWSGI function that uWSGI 2.0 does not have (it stands for one
 * added in a later release, as a plugin written for uWSGI 2.1 would). */
#include <uwsgi.h>

int uwsgi_function_of_a_later_release(struct wsgi_request *);

static int newer_request(struct wsgi_request *wsgi_req) {
	return uwsgi_function_of_a_later_release(wsgi_req);
}

struct uwsgi_plugin newer_plugin = {
	.name = "newer",
	.modifier1 = 248,
	.request = newer_request,
};
