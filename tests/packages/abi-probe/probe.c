/* abi-probe: answers every request (modifier1 251) with fields it reads from
 * uWSGI's own structs, so a build of another layout answers wrong values or
 * crashes; its constructor says when plugin code runs at all. */
#include <uwsgi.h>

extern struct uwsgi_server uwsgi;

__attribute__((constructor)) static void probe_constructor(void) {
	fprintf(stderr, "abi-probe: constructor ran\n");
}

static int probe_request(struct wsgi_request *wsgi_req) {
	char body[256];
	if (uwsgi_parse_vars(wsgi_req)) {
		return -1;
	}
	int len = snprintf(body, sizeof(body), "buffer_size=%llu numproc=%d mywid=%d pid=%d",
			   (unsigned long long) uwsgi.buffer_size, uwsgi.numproc, uwsgi.mywid,
			   (int) uwsgi.workers[uwsgi.mywid].pid);
	if (uwsgi_response_prepare_headers(wsgi_req, "200 OK", 6)) goto end;
	if (uwsgi_response_add_content_type(wsgi_req, "text/plain", 10)) goto end;
	uwsgi_response_write_body_do(wsgi_req, body, len);
end:
	return UWSGI_OK;
}

struct uwsgi_plugin probe_plugin = {
	.name = "probe",
	.modifier1 = 251,
	.request = probe_request,
};
