/* Answers every request with the version of the Python running it, from the
 * Python C API: a build of it for pyuwsgi serves one CPython only. */
#include <uwsgi.h>

extern const char *Py_GetVersion(void);

static int pyapi_request(struct wsgi_request *wsgi_req) {
	const char *version = Py_GetVersion();
	if (uwsgi_parse_vars(wsgi_req)) return -1;
	if (uwsgi_response_prepare_headers(wsgi_req, "200 OK", 6)) goto end;
	if (uwsgi_response_add_content_type(wsgi_req, "text/plain", 10)) goto end;
	uwsgi_response_write_body_do(wsgi_req, (char *) version, strlen(version));
end:
	return UWSGI_OK;
}

struct uwsgi_plugin pyapi_plugin = {
	.name = "pyapi",
	.modifier1 = 250,
	.request = pyapi_request,
};
