/* obj_schema_gateway.c — schemas, semantic checks and defaults of the
 * Gateway API kinds V6 serves (gateway.networking.k8s.io/v1 GatewayClass,
 * Gateway, HTTPRoute), with the rules the upstream CRDs state as patterns,
 * limits and CEL expressions. The table of kinds (obj_kind.c) points here;
 * the routing-snapshot builder reads the objects these tables admit. */
#include "obj_schema.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define GW_GROUP "gateway.networking.k8s.io"

/* ---- small checks ---------------------------------------------------- */

static void
err_at(struct errlist *errs, const char *path, const char *key, const char *reason,
    const char *msg)
{
	char *p = key ? schema_path_key(path, key) : xstrdup(path);
	errlist_add(errs, p, reason, "%s", msg);
	free(p);
}

static void
check_max_items(const json_t *arr, const char *path, size_t max, struct errlist *errs)
{
	if (json_array_size(arr) > max)
		errlist_add(errs, path, "FieldValueTooMany",
		    "Too many: %zu: must have at most %zu items", json_array_size(arr), max);
}

static void
check_len(const json_t *v, const char *path, struct errlist *errs, size_t min, size_t max)
{
	size_t n = json_string_length(v);
	if (n < min)
		errlist_add(errs, path, "FieldValueRequired", "Required value");
	else if (n > max)
		errlist_add(errs, path, "FieldValueTooLong",
		    "Too long: may not be more than %zu bytes", max);
}

static void
check_port(const json_t *v, const char *path, struct errlist *errs)
{
	json_int_t x = json_integer_value(v);
	if (x < 1 || x > 65535)
		schema_err_invalid(errs, path, v, "must be between 1 and 65535, inclusive");
}

/* Gateway API Hostname: an optional "*." then a DNS-1123 subdomain. */
static void
check_hostname(const json_t *v, const char *path, struct errlist *errs)
{
	const char *s = json_string_value(v);
	const char *rest = str_has_prefix(s, "*.") ? s + 2 : s;
	if (!*s || strlen(s) > 253 || name_check_dns1123_subdomain(rest))
		schema_err_invalid(errs, path, v, "must be a lowercase RFC 1123 hostname, "
		    "optionally prefixed with a wildcard label '*.' (e.g. 'example.com' or "
		    "'*.example.com')");
}

static void
check_subdomain(const json_t *v, const char *path, struct errlist *errs)
{
	const char *msg = name_check_dns1123_subdomain(json_string_value(v));
	if (msg)
		schema_err_invalid(errs, path, v, "%s", msg);
}

static void
check_label(const json_t *v, const char *path, struct errlist *errs)
{
	const char *msg = name_check_dns1123_label(json_string_value(v));
	if (msg)
		schema_err_invalid(errs, path, v, "%s", msg);
}

/* HTTP header and query parameter names: RFC 7230 tokens. */
static void
check_token(const json_t *v, const char *path, struct errlist *errs)
{
	const char *s = json_string_value(v);
	bool ok = *s && strlen(s) <= 256;
	for (const char *p = s; ok && *p; p++)
		ok = isalnum((unsigned char)*p) || strchr("!#$%&'*+-.^_`|~", *p);
	if (!ok)
		schema_err_invalid(errs, path, v, "must be a valid HTTP header name: 1 to "
		    "256 characters matching '^[A-Za-z0-9!#$%%&'*+\\-.^_`|~]+$'");
}

/* Gateway API Duration: 1 to 4 groups of up to 5 digits and a unit
 * (h, m, s, ms), "1h30m", "500ms". Returns milliseconds or -1. */
static int64_t
duration_ms(const char *s)
{
	static const struct { const char *unit; int64_t ms; } units[] = {
		{ "ms", 1 }, { "h", 3600000 }, { "m", 60000 }, { "s", 1000 },
	};
	int64_t total = 0;
	int groups = 0;
	while (*s) {
		size_t nd = strspn(s, "0123456789");
		if (nd == 0 || nd > 5 || ++groups > 4)
			return -1;
		int64_t n = strtoll(s, NULL, 10), mult = 0;
		s += nd;
		for (size_t i = 0; i < ARRAY_SIZE(units) && !mult; i++)
			if (str_has_prefix(s, units[i].unit)) {
				mult = units[i].ms;
				s += strlen(units[i].unit);
			}
		if (!mult)
			return -1;
		total += n * mult;
	}
	return groups ? total : -1;
}

static void
check_duration(const json_t *v, const char *path, struct errlist *errs)
{
	if (duration_ms(json_string_value(v)) < 0)
		schema_err_invalid(errs, path, v, "must be a Gateway API duration such as "
		    "'10s', '500ms' or '1h30m' (regex used for validation is "
		    "'^([0-9]{1,5}(h|m|s|ms)){1,4}$')");
}

static void
check_regex(const json_t *v, const char *path, struct errlist *errs)
{
	regex_t re;
	if (regcomp(&re, json_string_value(v), REG_EXTENDED | REG_NOSUB) != 0) {
		schema_err_invalid(errs, path, v, "must be a valid POSIX extended regular "
		    "expression");
		return;
	}
	regfree(&re);
}

static const char *
str_or(const json_t *o, const char *key, const char *def)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : def;
}

/* True if key (case-insensitively when nocase) was already in seen;
 * remembers it otherwise. */
static bool
seen_before(json_t *seen, const char *key, bool nocase)
{
	char *k = xstrdup(key);
	for (char *p = k; nocase && *p; p++)
		*p = (char)tolower((unsigned char)*p);
	bool dup = json_object_get(seen, k) != NULL;
	json_object_set_new(seen, k, json_true());
	free(k);
	return dup;
}

/* ---- enums ----------------------------------------------------------- */

static const char *const listener_protocols[] = { "HTTP", "HTTPS", "TCP", NULL };
static const char *const listener_protocols_unsup[] = { "TLS", "UDP", NULL };
static const char *const tls_modes[] = { "Terminate", "Passthrough", NULL };
static const char *const from_namespaces[] = { "All", "Same", "Selector", NULL };
static const char *const address_types[] = { "IPAddress", NULL };
static const char *const address_types_unsup[] = { "Hostname", "NamedAddress", NULL };
static const char *const path_types[] = { "Exact", "PathPrefix", NULL };
static const char *const path_types_unsup[] = { "RegularExpression", NULL };
static const char *const value_match_types[] = { "Exact", "RegularExpression", NULL };
static const char *const http_methods[] = { "GET", "HEAD", "POST", "PUT", "DELETE",
	"CONNECT", "OPTIONS", "TRACE", "PATCH", NULL };
static const char *const filter_types[] = { "RequestHeaderModifier",
	"ResponseHeaderModifier", "RequestMirror", "RequestRedirect", "URLRewrite", NULL };
static const char *const filter_types_unsup[] = { "ExtensionRef", "CORS", "ExternalAuth",
	NULL };
static const char *const redirect_schemes[] = { "http", "https", NULL };
static const char *const path_modifier_types[] = { "ReplaceFullPath", "ReplacePrefixMatch",
	NULL };

/* ---- GatewayClass ---------------------------------------------------- */

/* "example.com/path": a DNS subdomain, a slash, a path. */
static void
check_controller_name(const json_t *v, const char *path, struct errlist *errs)
{
	const char *s = json_string_value(v), *slash = strchr(s, '/');
	char *domain = slash ? xstrndup(s, (size_t)(slash - s)) : NULL;
	if (!domain || !slash[1] || strlen(s) > 253 || name_check_dns1123_subdomain(domain))
		schema_err_invalid(errs, path, v, "must be a domain-prefixed path such as "
		    "'example.com/gateway-controller'");
	free(domain);
}

static const struct schema_field gatewayclass_spec[] = {
	F_STR("controllerName", .flags = SF_REQUIRED, .check = check_controller_name),
	F_STR("description"),
	F_UNSUP("parametersRef"),
	F_END
};

const struct schema_field schema_gatewayclass[] = {
	F_OBJ("spec", gatewayclass_spec, .flags = SF_REQUIRED),
	F_MAPA("status"),
	F_END
};

void
gw_gatewayclass_update(const json_t *old, const json_t *obj, struct errlist *errs)
{
	const json_t *a = obj_get_path(old, "spec.controllerName");
	const json_t *b = obj_get_path(obj, "spec.controllerName");
	if (a && !json_equal((json_t *)a, (json_t *)b))
		schema_err_invalid(errs, "spec.controllerName", b, "Value is immutable");
}

/* ---- Gateway --------------------------------------------------------- */

static const struct schema_field route_namespaces[] = {
	F_STR("from", .enums = from_namespaces),
	F_OBJ("selector", schema_label_selector),
	F_END
};

static void
check_route_namespaces(const json_t *v, const char *path, struct errlist *errs)
{
	if (!strcmp(str_or(v, "from", "Same"), "Selector") &&
	    !json_is_object(json_object_get(v, "selector")))
		err_at(errs, path, "selector", "FieldValueRequired",
		    "Required value: selector must be specified when from is set to 'Selector'");
}

/* Only HTTPRoute exists in V6; other route kinds are upstream kinds it
 * does not serve. */
static void
check_route_kind(const json_t *v, const char *path, struct errlist *errs)
{
	static const char *const unsup[] = { "GRPCRoute", "TCPRoute", "TLSRoute",
		"UDPRoute", NULL };
	const char *group = str_or(v, "group", GW_GROUP);
	const char *kind = str_or(v, "kind", "");
	if (!strcmp(group, GW_GROUP) && !strcmp(kind, "HTTPRoute"))
		return;
	for (const char *const *u = unsup; *u; u++)
		if (!strcmp(group, GW_GROUP) && !strcmp(kind, *u)) {
			err_at(errs, path, "kind", "FieldValueNotSupported",
			    "unsupported value: not supported by v6");
			return;
		}
	char *p = schema_path_key(path, "kind");
	schema_err_invalid(errs, p, json_object_get(v, "kind"), "supported route kinds: "
	    "HTTPRoute (group %s)", GW_GROUP);
	free(p);
}

static const struct schema_field allowed_routes_kind[] = {
	F_STR("group"),
	F_STR("kind", .flags = SF_REQUIRED),
	F_END
};

static const struct schema_field allowed_routes[] = {
	F_OBJ("namespaces", route_namespaces, .check = check_route_namespaces),
	F_AOBJ("kinds", allowed_routes_kind, .check = check_route_kind),
	F_END
};

/* SecretObjectReference; the kind and namespace rules are the status's
 * (ResolvedRefs), as upstream reports them there. */
static const struct schema_field secret_ref[] = {
	F_STR("group"),
	F_STR("kind"),
	F_STR("name", .flags = SF_REQUIRED),
	F_STR("namespace"),
	F_END
};

/* GatewayTLSConfig: certificates to terminate with. Options are
 * implementation-specific and V6 has none. */
static const struct schema_field listener_tls[] = {
	F_STR("mode", .enums = tls_modes),
	F_AOBJ("certificateRefs", secret_ref),
	F_UNSUP("options"),
	F_UNSUP("frontendValidation"),
	F_END
};

static const struct schema_field listener[] = {
	F_STR("name", .flags = SF_REQUIRED, .check = check_subdomain),
	F_STR("hostname", .check = check_hostname),
	F_INT("port", .flags = SF_REQUIRED, .check = check_port),
	F_STR("protocol", .flags = SF_REQUIRED, .enums = listener_protocols,
	    .unsupported = listener_protocols_unsup),
	F_OBJ("allowedRoutes", allowed_routes),
	F_OBJ("tls", listener_tls),
	F_END
};

static void
check_ip(const json_t *v, const char *path, struct errlist *errs)
{
	unsigned char buf[16];
	const char *s = json_string_value(v);
	if (inet_pton(AF_INET, s, buf) != 1 && inet_pton(AF_INET6, s, buf) != 1)
		schema_err_invalid(errs, path, v, "must be a valid IP address");
}

static const struct schema_field gateway_address[] = {
	F_STR("type", .enums = address_types, .unsupported = address_types_unsup),
	F_STR("value", .flags = SF_REQUIRED, .check = check_ip),
	F_END
};

static const struct schema_field gateway_spec[] = {
	F_STR("gatewayClassName", .flags = SF_REQUIRED, .check = check_subdomain),
	F_AOBJ("listeners", listener, .flags = SF_REQUIRED),
	F_AOBJ("addresses", gateway_address),
	F_UNSUP("infrastructure"),
	F_UNSUP("backendTLS"),
	F_UNSUP("allowedListeners"),
	F_END
};

const struct schema_field schema_gateway[] = {
	F_OBJ("spec", gateway_spec, .flags = SF_REQUIRED),
	F_MAPA("status"),
	F_END
};

/* The upstream CRD's CEL rules on listeners[].tls. */
static void
gateway_listener_tls(const json_t *l, const char *lp, const char *proto, struct errlist *errs)
{
	const json_t *tls = json_object_get(l, "tls");
	const char *mode = str_or(tls, "mode", "Terminate");
	if (tls == NULL)
		return;
	if (!strcmp(proto, "HTTP") || !strcmp(proto, "TCP") || !strcmp(proto, "UDP")) {
		err_at(errs, lp, "tls", "FieldValueForbidden", "Forbidden: tls must not be "
		    "specified for protocols ['HTTP', 'TCP', 'UDP']");
		return;
	}
	char *tp = schema_path_key(lp, "tls");
	if (!strcmp(proto, "HTTPS") && strcmp(mode, "Terminate") != 0)
		err_at(errs, tp, "mode", "FieldValueInvalid", "Invalid value: tls mode must be "
		    "Terminate for protocol HTTPS (Passthrough is for protocol TLS, which is not "
		    "supported by v6)");
	if (!strcmp(mode, "Terminate") && json_array_size(json_object_get(tls,
	    "certificateRefs")) == 0 && json_object_size(json_object_get(tls, "options")) == 0)
		err_at(errs, tp, "certificateRefs", "FieldValueRequired", "Required value: "
		    "certificateRefs or options must be specified when mode is Terminate");
	char *cp = schema_path_key(tp, "certificateRefs");
	check_max_items(json_object_get(tls, "certificateRefs"), cp, 64, errs);
	free(cp);
	free(tp);
}

static void
gateway_listener_rules(const json_t *l, size_t i, json_t *names, json_t *combos,
    struct errlist *errs)
{
	char *lp = xasprintf("spec.listeners[%zu]", i);
	const char *proto = str_or(l, "protocol", "");
	const char *host = str_or(l, "hostname", "");
	if (seen_before(names, str_or(l, "name", ""), false)) {
		char *p = schema_path_key(lp, "name");
		errlist_add(errs, p, "FieldValueDuplicate", "Duplicate value: \"%s\": "
		    "listener name must be unique within the Gateway", str_or(l, "name", ""));
		free(p);
	}
	char *combo = xasprintf("%lld/%s/%s",
	    (long long)json_integer_value(json_object_get(l, "port")), proto, host);
	if (seen_before(combos, combo, false))
		errlist_add(errs, lp, "FieldValueDuplicate", "Duplicate value: "
		    "combination of port, protocol and hostname must be unique for each "
		    "listener");
	free(combo);
	if (*host && (!strcmp(proto, "TCP") || !strcmp(proto, "UDP")))
		err_at(errs, lp, "hostname", "FieldValueForbidden",
		    "Forbidden: hostname must not be specified for protocols ['TCP', 'UDP']");
	gateway_listener_tls(l, lp, proto, errs);
	free(lp);
}

void
gw_gateway_validate(const json_t *obj, struct errlist *errs)
{
	const json_t *ls = obj_get_path(obj, "spec.listeners");
	if (json_array_size(ls) == 0)
		errlist_add(errs, "spec.listeners", "FieldValueRequired",
		    "Required value: at least one listener");
	check_max_items(ls, "spec.listeners", 64, errs);
	check_max_items(obj_get_path(obj, "spec.addresses"), "spec.addresses", 16, errs);
	json_t *names = json_object(), *combos = json_object();
	size_t i;
	json_t *l;
	json_array_foreach(ls, i, l)
		gateway_listener_rules(l, i, names, combos, errs);
	json_decref(names);
	json_decref(combos);
}

void
gw_gateway_defaults(json_t *obj)
{
	size_t i;
	json_t *x;
	json_array_foreach(obj_get_path(obj, "spec.listeners"), i, x) {
		json_t *ar = json_object_get(x, "allowedRoutes");
		if (!json_is_object(ar)) {
			ar = json_object();
			json_object_set_new(x, "allowedRoutes", ar);
		}
		json_t *ns = json_object_get(ar, "namespaces");
		if (!json_is_object(ns)) {
			ns = json_object();
			json_object_set_new(ar, "namespaces", ns);
		}
		schema_default_str(ns, "from", "Same");
		size_t j;
		json_t *k, *tls = json_object_get(x, "tls");
		if (json_is_object(tls)) {
			schema_default_str(tls, "mode", "Terminate");
			json_array_foreach(json_object_get(tls, "certificateRefs"), j, k) {
				schema_default_str(k, "group", "");
				schema_default_str(k, "kind", "Secret");
			}
		}
		json_array_foreach(json_object_get(ar, "kinds"), j, k)
			schema_default_str(k, "group", GW_GROUP);
	}
	json_array_foreach(obj_get_path(obj, "spec.addresses"), i, x)
		schema_default_str(x, "type", "IPAddress");
}

/* ---- HTTPRoute: references ------------------------------------------- */

/* A parentRef names a Gateway (group gateway.networking.k8s.io, the
 * default) or, for mesh routing, a Service (group ""). */
static void
check_parent_ref(const json_t *v, const char *path, struct errlist *errs)
{
	const char *group = str_or(v, "group", GW_GROUP);
	const char *kind = str_or(v, "kind", "Gateway");
	if ((!strcmp(group, GW_GROUP) && !strcmp(kind, "Gateway")) ||
	    (!*group && !strcmp(kind, "Service")))
		return;
	char *p = schema_path_key(path, "kind");
	schema_err_invalid(errs, p, json_object_get(v, "kind") ? json_object_get(v, "kind") :
	    json_object_get(v, "group"), "a parentRef must name a Gateway (group %s) or "
	    "a Service (group \"\")", GW_GROUP);
	free(p);
}

static void
check_backend_ref(const json_t *v, const char *path, struct errlist *errs)
{
	const char *group = str_or(v, "group", "");
	const char *kind = str_or(v, "kind", "Service");
	if (*group || strcmp(kind, "Service")) {
		err_at(errs, path, *group ? "group" : "kind", "FieldValueNotSupported",
		    "unsupported value: not supported by v6: backendRefs must name a "
		    "Service (group \"\", kind Service)");
		return;
	}
	if (!json_object_get(v, "port"))
		err_at(errs, path, "port", "FieldValueRequired",
		    "Required value: must have port for Service reference");
}

static void
check_weight(const json_t *v, const char *path, struct errlist *errs)
{
	json_int_t w = json_integer_value(v);
	if (w < 0 || w > 1000000)
		schema_err_invalid(errs, path, v, "must be between 0 and 1000000, inclusive");
}

static void
check_name_253(const json_t *v, const char *path, struct errlist *errs)
{
	check_len(v, path, errs, 1, 253);
}

static const struct schema_field parent_ref[] = {
	F_STR("group"),
	F_STR("kind"),
	F_STR("namespace", .check = check_label),
	F_STR("name", .flags = SF_REQUIRED, .check = check_name_253),
	F_STR("sectionName", .check = check_subdomain),
	F_INT("port", .check = check_port),
	F_END
};

static const struct schema_field backend_object_ref[] = {
	F_STR("group"),
	F_STR("kind"),
	F_STR("name", .flags = SF_REQUIRED, .check = check_name_253),
	F_STR("namespace", .check = check_label),
	F_INT("port", .check = check_port),
	F_END
};

static const struct schema_field backend_ref[] = {
	F_STR("group"),
	F_STR("kind"),
	F_STR("name", .flags = SF_REQUIRED, .check = check_name_253),
	F_STR("namespace", .check = check_label),
	F_INT("port", .check = check_port),
	F_INT("weight", .check = check_weight),
	F_UNSUP("filters"),
	F_END
};

/* ---- HTTPRoute: matches ---------------------------------------------- */

static const char *
path_problem(const char *s)
{
	static const char *const banned[] = { "//", "/./", "/../", "%2f", "%2F", "#" };
	if (*s != '/')
		return "value must be an absolute path and start with '/'";
	for (size_t i = 0; i < ARRAY_SIZE(banned); i++)
		if (strstr(s, banned[i]))
			return "must not contain '//', '/./', '/../', '%2f', '%2F' or '#'";
	if (str_has_suffix(s, "/..") || str_has_suffix(s, "/."))
		return "must not end with '/..' or '/.'";
	for (const char *p = s; *p; p++) {
		if (*p == '%') {
			if (!isxdigit((unsigned char)p[1]) || !isxdigit((unsigned char)p[2]))
				return "'%' must start a percent-encoded octet (%XX)";
			p += 2;
		} else if (!isalnum((unsigned char)*p) && !strchr("-/._~!$&'()*+,;=:@", *p)) {
			return "must only contain valid URI path characters";
		}
	}
	return NULL;
}

static void
check_path_match(const json_t *v, const char *path, struct errlist *errs)
{
	const json_t *value = json_object_get(v, "value");
	const char *type = str_or(v, "type", "PathPrefix");
	if (!json_is_string(value) || (strcmp(type, "Exact") && strcmp(type, "PathPrefix")))
		return;
	char *p = schema_path_key(path, "value");
	const char *msg = json_string_length(value) > 1024 ?
	    "must be no more than 1024 characters" : path_problem(json_string_value(value));
	if (msg)
		schema_err_invalid(errs, p, value, "%s", msg);
	free(p);
}

/* A header or query-parameter match: the value is a regular expression
 * for type RegularExpression. */
static void
check_value_match(const json_t *v, const char *path, struct errlist *errs)
{
	const json_t *value = json_object_get(v, "value");
	if (!json_is_string(value))
		return;
	char *p = schema_path_key(path, "value");
	if (!strcmp(str_or(v, "type", "Exact"), "RegularExpression"))
		check_regex(value, p, errs);
	else
		check_len(value, p, errs, 1, 4096);
	free(p);
}

static const struct schema_field path_match[] = {
	F_STR("type", .enums = path_types, .unsupported = path_types_unsup),
	F_STR("value"),
	F_END
};

static const struct schema_field value_match[] = {
	F_STR("type", .enums = value_match_types),
	F_STR("name", .flags = SF_REQUIRED, .check = check_token),
	F_STR("value", .flags = SF_REQUIRED),
	F_END
};

/* Header names repeat case-insensitively, query parameter names exactly. */
static void
check_unique_names(const json_t *list, const char *path, const char *what, bool nocase,
    struct errlist *errs)
{
	json_t *seen = json_object();
	size_t i;
	json_t *x;
	json_array_foreach(list, i, x) {
		const char *name = json_string_value(json_object_get(x, "name"));
		if (!name || !seen_before(seen, name, nocase))
			continue;
		char *ip = schema_path_index(path, i);
		char *p = schema_path_key(ip, "name");
		errlist_add(errs, p, "FieldValueDuplicate", "Duplicate value: \"%s\": %s "
		    "name must be unique in a match", name, what);
		free(p);
		free(ip);
	}
	json_decref(seen);
}

static void
check_match(const json_t *v, const char *path, struct errlist *errs)
{
	static const struct { const char *key, *what; bool nocase; } lists[] = {
		{ "headers", "header", true }, { "queryParams", "query parameter", false },
	};
	for (size_t i = 0; i < ARRAY_SIZE(lists); i++) {
		const json_t *l = json_object_get(v, lists[i].key);
		char *p = schema_path_key(path, lists[i].key);
		check_max_items(l, p, 16, errs);
		check_unique_names(l, p, lists[i].what, lists[i].nocase, errs);
		free(p);
	}
}

static const struct schema_field route_match[] = {
	F_OBJ("path", path_match, .check = check_path_match),
	F_AOBJ("headers", value_match, .check = check_value_match),
	F_AOBJ("queryParams", value_match, .check = check_value_match),
	F_STR("method", .enums = http_methods),
	F_END
};

/* ---- HTTPRoute: filters ---------------------------------------------- */

static const struct schema_field header_pair[] = {
	F_STR("name", .flags = SF_REQUIRED, .check = check_token),
	F_STR("value", .flags = SF_REQUIRED),
	F_END
};

static void
check_header_modifier(const json_t *v, const char *path, struct errlist *errs)
{
	static const char *const lists[] = { "set", "add" };
	for (size_t i = 0; i < ARRAY_SIZE(lists); i++) {
		const json_t *l = json_object_get(v, lists[i]);
		char *p = schema_path_key(path, lists[i]);
		check_max_items(l, p, 16, errs);
		check_unique_names(l, p, "header", true, errs);
		free(p);
	}
	const json_t *rm = json_object_get(v, "remove");
	char *p = schema_path_key(path, "remove");
	check_max_items(rm, p, 16, errs);
	json_t *seen = json_object();
	size_t i;
	json_t *x;
	json_array_foreach(rm, i, x)
		if (json_is_string(x) && seen_before(seen, json_string_value(x), true)) {
			char *ip = schema_path_index(p, i);
			schema_err_invalid(errs, ip, x, "header names in remove must be unique");
			free(ip);
		}
	json_decref(seen);
	free(p);
}

static const struct schema_field header_modifier[] = {
	F_AOBJ("set", header_pair),
	F_AOBJ("add", header_pair),
	F_ARR("remove", ST_STRING, .check = check_token),
	F_END
};

static void
check_percent(const json_t *v, const char *path, struct errlist *errs)
{
	json_int_t x = json_integer_value(v);
	if (x < 0 || x > 100)
		schema_err_invalid(errs, path, v, "must be between 0 and 100, inclusive");
}

static void
check_fraction(const json_t *v, const char *path, struct errlist *errs)
{
	json_int_t num = json_integer_value(json_object_get(v, "numerator"));
	const json_t *d = json_object_get(v, "denominator");
	json_int_t den = d ? json_integer_value(d) : 100;
	if (num < 0)
		err_at(errs, path, "numerator", "FieldValueInvalid",
		    "Invalid value: must be greater than or equal to 0");
	if (den < 1)
		err_at(errs, path, "denominator", "FieldValueInvalid",
		    "Invalid value: must be greater than or equal to 1");
	else if (num > den)
		err_at(errs, path, "numerator", "FieldValueInvalid",
		    "Invalid value: numerator must be less than or equal to denominator");
}

static const struct schema_field fraction[] = {
	F_INT("numerator", .flags = SF_REQUIRED),
	F_INT("denominator"),
	F_END
};

static void
check_mirror(const json_t *v, const char *path, struct errlist *errs)
{
	if (json_object_get(v, "percent") && json_object_get(v, "fraction"))
		errlist_add(errs, path, "FieldValueForbidden",
		    "Forbidden: only one of percent or fraction may be specified");
}

static const struct schema_field request_mirror[] = {
	F_OBJ("backendRef", backend_object_ref, .flags = SF_REQUIRED,
	    .check = check_backend_ref),
	F_INT("percent", .check = check_percent),
	F_OBJ("fraction", fraction, .check = check_fraction),
	F_END
};

static void
check_len_1024(const json_t *v, const char *path, struct errlist *errs)
{
	check_len(v, path, errs, 0, 1024);
}

/* RequestRedirect / URLRewrite path: the member named by type, and only it
 * (the CRD's CEL rules). */
static void
check_path_modifier(const json_t *v, const char *path, struct errlist *errs)
{
	static const char *const members[] = { "replaceFullPath", "replacePrefixMatch" };
	const char *type = str_or(v, "type", "");
	for (size_t i = 0; i < ARRAY_SIZE(members); i++) {
		bool want = !strcasecmp(type + strlen("Replace"), members[i] + strlen("replace")) &&
		    strlen(type) > strlen("Replace");
		bool have = json_object_get(v, members[i]) != NULL;
		if (want && !have)
			err_at(errs, path, members[i], "FieldValueRequired", "Required value: "
			    "must be specified when type is set to this value");
		else if (!want && have)
			err_at(errs, path, members[i], "FieldValueForbidden", "Forbidden: type "
			    "must be set to the matching Replace value when this is set");
	}
	const char *pfx = str_or(v, "replacePrefixMatch", NULL);
	const char *full = str_or(v, "replaceFullPath", NULL);
	if ((pfx && *pfx != '/') || (full && *full != '/'))
		errlist_add(errs, path, "FieldValueInvalid", "Invalid value: a path must "
		    "start with '/'");
}

static const struct schema_field path_modifier[] = {
	F_STR("type", .flags = SF_REQUIRED, .enums = path_modifier_types),
	F_STR("replaceFullPath", .check = check_len_1024),
	F_STR("replacePrefixMatch", .check = check_len_1024),
	F_END
};

static void
check_redirect_code(const json_t *v, const char *path, struct errlist *errs)
{
	static const json_int_t codes[] = { 301, 302, 303, 307, 308 };
	for (size_t i = 0; i < ARRAY_SIZE(codes); i++)
		if (json_integer_value(v) == codes[i])
			return;
	schema_err_invalid(errs, path, v, "supported values: 301, 302, 303, 307, 308");
}

static const struct schema_field request_redirect[] = {
	F_STR("scheme", .enums = redirect_schemes),
	F_STR("hostname", .check = check_subdomain),
	F_OBJ("path", path_modifier, .check = check_path_modifier),
	F_INT("port", .check = check_port),
	F_INT("statusCode", .check = check_redirect_code),
	F_END
};

static const struct schema_field url_rewrite[] = {
	F_STR("hostname", .check = check_subdomain),
	F_OBJ("path", path_modifier, .check = check_path_modifier),
	F_END
};

/* Which member goes with which filter type. */
static const struct { const char *type, *member; } filter_members[] = {
	{ "RequestHeaderModifier", "requestHeaderModifier" },
	{ "ResponseHeaderModifier", "responseHeaderModifier" },
	{ "RequestMirror", "requestMirror" },
	{ "RequestRedirect", "requestRedirect" },
	{ "URLRewrite", "urlRewrite" },
	{ "ExtensionRef", "extensionRef" },
};

static void
check_filter(const json_t *v, const char *path, struct errlist *errs)
{
	const char *type = str_or(v, "type", "");
	bool supported = false;
	for (const char *const *t = filter_types; *t; t++)
		supported |= !strcmp(type, *t);
	for (size_t i = 0; supported && i < ARRAY_SIZE(filter_members); i++) {
		bool want = !strcmp(type, filter_members[i].type);
		bool have = json_object_get(v, filter_members[i].member) != NULL;
		if (want && !have) {
			char *m = xasprintf("Required value: filter.%s must be specified for "
			    "%s filter.type", filter_members[i].member, type);
			err_at(errs, path, filter_members[i].member, "FieldValueRequired", m);
			free(m);
		} else if (!want && have) {
			char *m = xasprintf("Forbidden: filter.%s must be nil if the "
			    "filter.type is not %s", filter_members[i].member,
			    filter_members[i].type);
			err_at(errs, path, filter_members[i].member, "FieldValueForbidden", m);
			free(m);
		}
	}
}

static const struct schema_field route_filter[] = {
	F_STR("type", .flags = SF_REQUIRED, .enums = filter_types,
	    .unsupported = filter_types_unsup),
	F_OBJ("requestHeaderModifier", header_modifier, .check = check_header_modifier),
	F_OBJ("responseHeaderModifier", header_modifier, .check = check_header_modifier),
	F_OBJ("requestMirror", request_mirror, .check = check_mirror),
	F_OBJ("requestRedirect", request_redirect),
	F_OBJ("urlRewrite", url_rewrite),
	F_UNSUP("extensionRef"),
	F_UNSUP("cors"),
	F_UNSUP("externalAuth"),
	F_END
};

/* ---- HTTPRoute: rules and the kind ----------------------------------- */

static void
check_timeouts(const json_t *v, const char *path, struct errlist *errs)
{
	const char *req = str_or(v, "request", NULL);
	const char *be = str_or(v, "backendRequest", NULL);
	if (!req || !be || duration_ms(req) <= 0)	/* "0s" disables the limit */
		return;
	if (duration_ms(be) > duration_ms(req)) {
		char *p = schema_path_key(path, "backendRequest");
		schema_err_invalid(errs, p, json_object_get(v, "backendRequest"),
		    "backendRequest timeout cannot be longer than request timeout");
		free(p);
	}
}

static const struct schema_field route_timeouts[] = {
	F_STR("request", .check = check_duration),
	F_STR("backendRequest", .check = check_duration),
	F_END
};

/* The HTTPRouteRule CEL rules on redirects and rewrites: not both in one rule, and
 * ReplacePrefixMatch needs exactly one PathPrefix match to know the prefix. */
static void
check_rewrite_rules(const json_t *rule, const char *path, struct errlist *errs)
{
	bool redirect = false, rewrite = false, prefix = false;
	size_t i;
	const json_t *f;
	json_array_foreach(json_object_get(rule, "filters"), i, f) {
		redirect |= !strcmp(str_or(f, "type", ""), "RequestRedirect");
		rewrite |= !strcmp(str_or(f, "type", ""), "URLRewrite");
		prefix |= !strcmp(str_or(obj_get_path(f, "requestRedirect.path"), "type", ""),
		    "ReplacePrefixMatch") || !strcmp(str_or(obj_get_path(f, "urlRewrite.path"),
		    "type", ""), "ReplacePrefixMatch");
	}
	if (redirect && rewrite)
		err_at(errs, path, "filters", "FieldValueInvalid", "Invalid value: May specify "
		    "either httpRouteFilterRequestRedirect or httpRouteFilterRequestRewrite, "
		    "but not both");
	const json_t *ms = json_object_get(rule, "matches");
	const char *mt = str_or(obj_get_path(json_array_get(ms, 0), "path"), "type",
	    "PathPrefix");
	if (prefix && (json_array_size(ms) != 1 || strcmp(mt, "PathPrefix")))
		err_at(errs, path, "matches", "FieldValueInvalid", "Invalid value: When using "
		    "a filter with path.type ReplacePrefixMatch, exactly one PathPrefix match "
		    "must be specified");
}

static void
check_rule(const json_t *v, const char *path, struct errlist *errs)
{
	static const struct { const char *key; size_t max; } limits[] = {
		{ "matches", 64 }, { "filters", 16 }, { "backendRefs", 16 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(limits); i++) {
		char *p = schema_path_key(path, limits[i].key);
		check_max_items(json_object_get(v, limits[i].key), p, limits[i].max, errs);
		free(p);
	}
	check_rewrite_rules(v, path, errs);
	json_t *seen = json_object();
	size_t i;
	json_t *f;
	char *fp = schema_path_key(path, "filters");
	json_array_foreach(json_object_get(v, "filters"), i, f) {
		const char *type = str_or(f, "type", "");
		if (strcmp(type, "RequestMirror") && *type && seen_before(seen, type, false)) {
			char *ip = schema_path_index(fp, i);
			err_at(errs, ip, "type", "FieldValueDuplicate", "Duplicate value: "
			    "filters other than RequestMirror cannot be repeated");
			free(ip);
		}
	}
	free(fp);
	json_decref(seen);
}

static const struct schema_field route_rule[] = {
	F_STR("name", .check = check_subdomain),
	F_AOBJ("matches", route_match, .check = check_match),
	F_AOBJ("filters", route_filter, .check = check_filter),
	F_AOBJ("backendRefs", backend_ref, .check = check_backend_ref),
	F_OBJ("timeouts", route_timeouts, .check = check_timeouts),
	F_UNSUP("retry"),
	F_UNSUP("sessionPersistence"),
	F_END
};

static const struct schema_field httproute_spec[] = {
	F_AOBJ("parentRefs", parent_ref, .check = check_parent_ref),
	F_ARR("hostnames", ST_STRING, .check = check_hostname),
	F_AOBJ("rules", route_rule, .check = check_rule),
	F_END
};

const struct schema_field schema_httproute[] = {
	F_OBJ("spec", httproute_spec),
	F_MAPA("status"),
	F_END
};

/* ---- GRPCRoute (stored and validated; not routed: the proxy speaks HTTP/1.1,
 * so its status says so, ctrl_gwstatus.c) ------------------------------------ */

static const char *const grpc_method_types[] = { "Exact", "RegularExpression", NULL };
static const char *const grpc_filter_types[] = { "RequestHeaderModifier",
	"ResponseHeaderModifier", "RequestMirror", "ExtensionRef", NULL };

/* A method match names a service or a method (the CRD's rule). */
static void
check_grpc_method(const json_t *v, const char *path, struct errlist *errs)
{
	if (!json_object_get(v, "service") && !json_object_get(v, "method"))
		errlist_add(errs, path, "FieldValueRequired",
		    "Required value: one or both of 'service' or 'method' must be specified");
}

static const struct schema_field grpc_method_match[] = {
	F_STR("type", .enums = grpc_method_types),
	F_STR("service", .check = check_len_1024),
	F_STR("method", .check = check_len_1024),
	F_END
};

static const struct schema_field grpc_route_match[] = {
	F_OBJ("method", grpc_method_match, .check = check_grpc_method),
	F_AOBJ("headers", value_match, .check = check_value_match),
	F_END
};

static const struct schema_field grpc_filter[] = {
	F_STR("type", .flags = SF_REQUIRED, .enums = grpc_filter_types),
	F_OBJ("requestHeaderModifier", header_modifier, .check = check_header_modifier),
	F_OBJ("responseHeaderModifier", header_modifier, .check = check_header_modifier),
	F_OBJ("requestMirror", request_mirror, .check = check_mirror),
	F_MAPA("extensionRef"),
	F_END
};

static const struct schema_field grpc_backend_ref[] = {
	F_STR("group"),
	F_STR("kind"),
	F_STR("name", .flags = SF_REQUIRED, .check = check_name_253),
	F_STR("namespace", .check = check_label),
	F_INT("port", .check = check_port),
	F_INT("weight", .check = check_weight),
	F_AOBJ("filters", grpc_filter),
	F_END
};

static const struct schema_field grpc_rule[] = {
	F_STR("name", .check = check_subdomain),
	F_AOBJ("matches", grpc_route_match),
	F_AOBJ("filters", grpc_filter),
	F_AOBJ("backendRefs", grpc_backend_ref),
	F_MAPA("sessionPersistence"),
	F_END
};

static const struct schema_field grpcroute_spec[] = {
	F_AOBJ("parentRefs", parent_ref, .check = check_parent_ref),
	F_ARR("hostnames", ST_STRING, .check = check_hostname),
	F_AOBJ("rules", grpc_rule),
	F_END
};

const struct schema_field schema_grpcroute[] = {
	F_OBJ("spec", grpcroute_spec),
	F_MAPA("status"),
	F_END
};

/* ---- ReferenceGrant (stored and validated; V6 lets routes refer across
 * namespaces without one, see docs/compatibility.md) ------------------------ */

/* from and to: 1 to 16 entries each (the CRD's minItems / maxItems). */
static void
check_grant_spec(const json_t *v, const char *path, struct errlist *errs)
{
	static const char *const lists[] = { "from", "to" };
	for (size_t i = 0; i < ARRAY_SIZE(lists); i++) {
		const json_t *l = json_object_get(v, lists[i]);
		if (json_is_array(l) && (json_array_size(l) < 1 || json_array_size(l) > 16)) {
			char *fp = schema_path_key(path, lists[i]);
			schema_err_invalid(errs, fp, l, "must have between 1 and 16 items");
			free(fp);
		}
	}
}

static const struct schema_field grant_from[] = {
	F_STR("group", .flags = SF_REQUIRED),
	F_STR("kind", .flags = SF_REQUIRED),
	F_STR("namespace", .flags = SF_REQUIRED, .check = check_label),
	F_END
};

static const struct schema_field grant_to[] = {
	F_STR("group", .flags = SF_REQUIRED),
	F_STR("kind", .flags = SF_REQUIRED),
	F_STR("name", .check = check_name_253),
	F_END
};

static const struct schema_field referencegrant_spec[] = {
	F_AOBJ("from", grant_from, .flags = SF_REQUIRED),
	F_AOBJ("to", grant_to, .flags = SF_REQUIRED),
	F_END
};

const struct schema_field schema_referencegrant[] = {
	F_OBJ("spec", referencegrant_spec, .flags = SF_REQUIRED, .check = check_grant_spec),
	F_END
};

/* Two parentRefs to the same parent need distinct sectionName or port. */
static void
check_parent_refs_unique(const json_t *refs, struct errlist *errs)
{
	json_t *seen = json_object();
	size_t i;
	json_t *r;
	json_array_foreach(refs, i, r) {
		const json_t *port = json_object_get(r, "port");
		char *key = xasprintf("%s/%s/%s/%s/%s/%lld", str_or(r, "group", GW_GROUP),
		    str_or(r, "kind", "Gateway"), str_or(r, "namespace", ""),
		    str_or(r, "name", ""), str_or(r, "sectionName", ""),
		    port ? (long long)json_integer_value(port) : 0LL);
		if (seen_before(seen, key, false)) {
			char *p = xasprintf("spec.parentRefs[%zu]", i);
			errlist_add(errs, p, "FieldValueDuplicate", "Duplicate value: "
			    "sectionName or port must be specified and unique when parentRefs "
			    "includes 2 or more references to the same parent");
			free(p);
		}
		free(key);
	}
	json_decref(seen);
}

static void
check_rule_names_unique(const json_t *rules, struct errlist *errs)
{
	json_t *seen = json_object();
	size_t i, total = 0;
	json_t *r;
	json_array_foreach(rules, i, r) {
		total += json_array_size(json_object_get(r, "matches"));
		const char *name = str_or(r, "name", NULL);
		if (!name || !seen_before(seen, name, false))
			continue;
		char *p = xasprintf("spec.rules[%zu].name", i);
		errlist_add(errs, p, "FieldValueDuplicate", "Duplicate value: \"%s\": rule "
		    "name must be unique within the route", name);
		free(p);
	}
	json_decref(seen);
	if (total > 128)
		errlist_add(errs, "spec.rules", "FieldValueTooMany", "Too many: %zu: the "
		    "total number of matches across all rules in a route must be at most 128",
		    total);
}

void
gw_httproute_validate(const json_t *obj, struct errlist *errs)
{
	const json_t *refs = obj_get_path(obj, "spec.parentRefs");
	const json_t *rules = obj_get_path(obj, "spec.rules");
	check_max_items(refs, "spec.parentRefs", 32, errs);
	check_max_items(obj_get_path(obj, "spec.hostnames"), "spec.hostnames", 16, errs);
	check_max_items(rules, "spec.rules", 16, errs);
	check_parent_refs_unique(refs, errs);
	check_rule_names_unique(rules, errs);
}

static json_t *
default_path_match(void)
{
	return json_pack("{s:{s:s, s:s}}", "path", "type", "PathPrefix", "value", "/");
}

static void
backend_defaults(json_t *b)
{
	schema_default_str(b, "group", "");
	schema_default_str(b, "kind", "Service");
}

static void
filter_defaults(json_t *f)
{
	json_t *m = json_object_get(f, "requestMirror");
	backend_defaults(json_object_get(m, "backendRef"));
	schema_default_int(json_object_get(m, "fraction"), "denominator", 100);
}

static void
match_defaults(json_t *m)
{
	json_t *path = json_object_get(m, "path");
	if (!json_is_object(path)) {
		path = json_object();
		json_object_set_new(m, "path", path);
	}
	schema_default_str(path, "type", "PathPrefix");
	schema_default_str(path, "value", "/");
	size_t i;
	json_t *x;
	json_array_foreach(json_object_get(m, "headers"), i, x)
		schema_default_str(x, "type", "Exact");
	json_array_foreach(json_object_get(m, "queryParams"), i, x)
		schema_default_str(x, "type", "Exact");
}

static void
rule_defaults(json_t *r)
{
	json_t *ms = json_object_get(r, "matches");
	if (!json_is_array(ms)) {
		ms = json_array();
		json_array_append_new(ms, default_path_match());
		json_object_set_new(r, "matches", ms);
	}
	size_t i;
	json_t *x;
	json_array_foreach(ms, i, x)
		match_defaults(x);
	json_array_foreach(json_object_get(r, "filters"), i, x)
		filter_defaults(x);
	json_array_foreach(json_object_get(r, "backendRefs"), i, x) {
		backend_defaults(x);
		schema_default_int(x, "weight", 1);
	}
}

void
gw_httproute_defaults(json_t *obj)
{
	json_t *spec = json_object_get(obj, "spec");
	if (!json_is_object(spec)) {
		spec = json_object();
		json_object_set_new(obj, "spec", spec);
	}
	size_t i;
	json_t *x;
	json_array_foreach(json_object_get(spec, "parentRefs"), i, x) {
		schema_default_str(x, "group", GW_GROUP);
		schema_default_str(x, "kind", "Gateway");
	}
	json_t *rules = json_object_get(spec, "rules");
	if (!json_is_array(rules)) {
		rules = json_array();
		json_array_append_new(rules, json_object());
		json_object_set_new(spec, "rules", rules);
	}
	json_array_foreach(rules, i, x)
		rule_defaults(x);
}
