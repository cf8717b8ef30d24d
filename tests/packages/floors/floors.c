/* The sample's greeting, where the pyuwsgi build alone (UWSGI_AS_SHARED_LIBRARY)
 * calls statx(), new in glibc 2.28: one plugin whose builds have two glibc floors. */
#include <uwsgi.h>

static char *floors_greeting = "Hello from a floor";

static struct uwsgi_option floors_options[] = {
	{"floors-greeting", required_argument, 0, "the text every request is answered with", uwsgi_opt_set_str, &floors_greeting, 0},
	{0, 0, 0, 0, 0, 0, 0},
};

static int floors_request(struct wsgi_request *wsgi_req) {
#ifdef UWSGI_AS_SHARED_LIBRARY
	struct statx root;
	if (statx(AT_FDCWD, "/", 0, STATX_TYPE, &root)) return -1;
#endif
	if (uwsgi_parse_vars(wsgi_req)) return -1;
	if (uwsgi_response_prepare_headers(wsgi_req, "200 OK", 6)) goto end;
	if (uwsgi_response_add_content_type(wsgi_req, "text/plain", 10)) goto end;
	uwsgi_response_write_body_do(wsgi_req, floors_greeting, strlen(floors_greeting));
end:
	return UWSGI_OK;
}

struct uwsgi_plugin floors_plugin = {
	.name = "floors",
	.modifier1 = 250,
	.options = floors_options,
	.request = floors_request,
};
