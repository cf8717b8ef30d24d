/* crypto-caller: answers each request (modifier1 251) with 16 random bytes as hex, from
 * libcrypto's RAND_bytes, which it does not link (no -lcrypto in LIBS): it relies on a uWSGI
 * built with SSL, which links libcrypto, and loads in no uWSGI without SSL. */
#include <uwsgi.h>
#include <openssl/rand.h>

static int cryptocaller_request(struct wsgi_request *wsgi_req) {
	unsigned char bytes[16];
	char hex[33];
	int i;
	if (uwsgi_parse_vars(wsgi_req) || RAND_bytes(bytes, sizeof(bytes)) != 1) {
		return -1;
	}
	for (i = 0; i < 16; i++) snprintf(hex + 2 * i, 3, "%02x", bytes[i]);
	if (uwsgi_response_prepare_headers(wsgi_req, "200 OK", 6)) goto end;
	uwsgi_response_write_body_do(wsgi_req, hex, 32);
end:
	return UWSGI_OK;
}

struct uwsgi_plugin cryptocaller_plugin = {
	.name = "cryptocaller",
	.modifier1 = 251,
	.request = cryptocaller_request,
};
