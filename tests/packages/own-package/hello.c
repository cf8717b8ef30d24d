/* hello: a uWSGI request plugin on modifier1 250 that answers every request
 * with 200 OK, text/plain and a greeting set by --hello-greeting. */
#include <uwsgi.h>

static char *hello_greeting = "Hello from a wheel";

static struct uwsgi_option hello_options[] = {
	{"hello-greeting", required_argument, 0, "the text every request is answered with", uwsgi_opt_set_str, &hello_greeting, 0},
	{0, 0, 0, 0, 0, 0, 0},
};

static int hello_request(struct wsgi_request *wsgi_req) {
	if (uwsgi_parse_vars(wsgi_req)) {
		return -1;
	}
	if (uwsgi_response_prepare_headers(wsgi_req, "200 OK", 6)) goto end;
	if (uwsgi_response_add_content_type(wsgi_req, "text/plain", 10)) goto end;
	uwsgi_response_write_body_do(wsgi_req, hello_greeting, strlen(hello_greeting));
end:
	return UWSGI_OK;
}

struct uwsgi_plugin hello_plugin = {
	.name = "hello",
	.modifier1 = 250,
	.options = hello_options,
	.request = hello_request,
};
