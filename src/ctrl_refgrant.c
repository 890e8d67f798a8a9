/* ctrl_refgrant.c — Gateway API ReferenceGrant: whether an object in one
 * namespace may refer to one in another (an HTTPRoute's backendRef to a
 * Service, a Gateway's certificateRef to a Secret). The grant lives in the
 * namespace of the object referred to; without one a cross-namespace
 * reference is refused, as every Gateway API implementation does. */
#include "ctrl.h"
#include "obj.h"

#include <string.h>

/* Group names as the grant spells them: the core group is "" ("core" is
 * accepted, as backendRefs accept it). */
static bool
group_is(const char *have, const char *want)
{
	if (!strcmp(have, "core"))
		have = "";
	if (!strcmp(want, "core"))
		want = "";
	return strcmp(have, want) == 0;
}

static bool
grant_allows(const json_t *g, const char *from_group, const char *from_kind,
    const char *from_ns, const char *to_group, const char *to_kind, const char *to_name)
{
	const json_t *e;
	size_t i;
	bool from = false, to = false;
	json_array_foreach(obj_get_path(g, "spec.from"), i, e)
		from |= group_is(obj_str(e, "group"), from_group) &&
		    !strcmp(obj_str(e, "kind"), from_kind) && !strcmp(obj_str(e, "namespace"), from_ns);
	json_array_foreach(obj_get_path(g, "spec.to"), i, e)
		to |= group_is(obj_str(e, "group"), to_group) && !strcmp(obj_str(e, "kind"), to_kind) &&
		    (!*obj_str(e, "name") || !strcmp(obj_str(e, "name"), to_name));
	return from && to;
}

bool
gw_ref_permitted(const json_t *grants, const char *from_group, const char *from_kind,
    const char *from_ns, const char *to_group, const char *to_kind, const char *to_ns,
    const char *to_name)
{
	if (strcmp(from_ns, to_ns) == 0)
		return true;
	const json_t *g;
	size_t i;
	const char *k;
	if (json_is_array(grants)) {
		json_array_foreach(grants, i, g)
			if (!strcmp(obj_namespace(g), to_ns) && grant_allows(g, from_group, from_kind,
			    from_ns, to_group, to_kind, to_name))
				return true;
		return false;
	}
	json_object_foreach((json_t *)grants, k, g)
		if (!strcmp(obj_namespace(g), to_ns) && grant_allows(g, from_group, from_kind,
		    from_ns, to_group, to_kind, to_name))
			return true;
	return false;
}
