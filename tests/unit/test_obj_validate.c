/* test_obj_validate.c — schema validation, semantic checks, updates and
 * defaulting of the registered kinds, and the kind table lookups. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obj.h"

static json_t *
load(const char *yaml)
{
	struct obj_docs docs = { NULL, 0 };
	struct errlist errs = { NULL, 0, 0 };
	if (obj_parse(yaml, strlen(yaml), &docs, &errs) != 0 || docs.n != 1)
		fail_msg("parse failed: %s", errs.n ? errs.v[0].message : "not one doc");
	json_t *o = json_incref(docs.v[0].obj);
	obj_docs_free(&docs);
	return o;
}

static void
dump(const struct errlist *e)
{
	for (size_t i = 0; i < e->n; i++)
		print_message("  %s [%s]: %s\n", e->v[i].field, e->v[i].reason, e->v[i].message);
}

/* Validates yaml; returns the errors (caller frees). */
static struct errlist
check(const char *yaml)
{
	struct errlist e = { NULL, 0, 0 };
	json_t *o = load(yaml);
	int rc = obj_validate(o, &e);
	assert_int_equal(rc, e.n ? -EINVAL : 0);
	json_decref(o);
	return e;
}

static const struct field_err *
find_err(const struct errlist *e, const char *field, const char *reason)
{
	for (size_t i = 0; i < e->n; i++)
		if (!strcmp(e->v[i].field, field) && (!reason || !strcmp(e->v[i].reason, reason)))
			return &e->v[i];
	dump(e);
	fail_msg("no %s error on %s", reason ? reason : "", field);
	return NULL;
}

static const char deployment_yaml[] =
    "apiVersion: apps/v1\n"
    "kind: Deployment\n"
    "metadata:\n"
    "  name: web\n"
    "  namespace: prod\n"
    "  labels: {app.kubernetes.io/name: web, tier: frontend}\n"
    "  annotations: {example.com/owner: \"team a\"}\n"
    "spec:\n"
    "  replicas: 3\n"
    "  selector:\n"
    "    matchLabels: {app: web}\n"
    "    matchExpressions:\n"
    "    - {key: tier, operator: In, values: [frontend]}\n"
    "  strategy:\n"
    "    type: RollingUpdate\n"
    "    rollingUpdate: {maxSurge: 1, maxUnavailable: 0}\n"
    "  minReadySeconds: 5\n"
    "  template:\n"
    "    metadata:\n"
    "      labels: {app: web, tier: frontend}\n"
    "    spec:\n"
    "      terminationGracePeriodSeconds: 20\n"
    "      volumes:\n"
    "      - name: config\n"
    "        configMap: {name: web-config, items: [{key: a, path: a.conf}]}\n"
    "      - name: cache\n"
    "        emptyDir: {sizeLimit: 64Mi}\n"
    "      initContainers:\n"
    "      - name: migrate\n"
    "        image: registry.local/web:1.2.3\n"
    "        command: [/bin/migrate]\n"
    "      containers:\n"
    "      - name: web\n"
    "        image: registry.local/web:1.2.3\n"
    "        args: [--port, \"8080\"]\n"
    "        ports:\n"
    "        - {name: http, containerPort: 8080}\n"
    "        env:\n"
    "        - {name: MODE, value: prod}\n"
    "        - name: POD_NAME\n"
    "          valueFrom: {fieldRef: {fieldPath: metadata.name}}\n"
    "        - name: PASSWORD\n"
    "          valueFrom: {secretKeyRef: {name: db, key: password}}\n"
    "        envFrom:\n"
    "        - configMapRef: {name: web-env}\n"
    "        resources:\n"
    "          requests: {cpu: 100m, memory: 64Mi}\n"
    "          limits: {cpu: \"1\", memory: 128Mi}\n"
    "        volumeMounts:\n"
    "        - {name: config, mountPath: /etc/web, readOnly: true}\n"
    "        - {name: cache, mountPath: /var/cache/web}\n"
    "        readinessProbe:\n"
    "          httpGet: {path: /healthz, port: http}\n"
    "        livenessProbe:\n"
    "          tcpSocket: {port: 8080}\n"
    "          initialDelaySeconds: 3\n"
    "        lifecycle:\n"
    "          preStop: {sleep: {seconds: 5}}\n"
    "        securityContext: {runAsNonRoot: true, capabilities: {drop: [ALL]}}\n";

static const char *const realistic[] = {
	deployment_yaml,
	"apiVersion: v1\nkind: Namespace\nmetadata: {name: prod, labels: {env: production}}\n",
	"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web-config, namespace: prod}\n"
	"data:\n  a.conf: |\n    listen 8080\n  LOG_LEVEL: info\n"
	"binaryData: {logo.png: iVBORw0KGgo=}\n",
	"apiVersion: v1\nkind: Secret\nmetadata: {name: db}\ntype: Opaque\n"
	"data: {password: c2VjcmV0}\nstringData: {user: admin}\n",
	"apiVersion: v1\nkind: Pod\nmetadata: {name: debug, labels: {app: debug}}\n"
	"spec:\n  restartPolicy: Never\n  runtimeClassName: process\n"
	"  containers:\n  - name: sh\n    image: busybox\n    command: [sleep, \"3600\"]\n"
	"    stdin: true\n    tty: true\n",
	"apiVersion: v1\nkind: Service\nmetadata: {name: web}\n"
	"spec:\n  selector: {app: web}\n  ports:\n  - {name: http, port: 80, targetPort: http}\n"
	"  - {name: metrics, port: 9090, targetPort: 9090, protocol: TCP}\n",
	"apiVersion: v1\nkind: Endpoints\nmetadata: {name: web}\nsubsets:\n"
	"- addresses:\n  - {ip: 127.1.0.5, targetRef: {kind: Pod, name: web-1, namespace: prod}}\n"
	"  notReadyAddresses: [{ip: 127.1.0.6}]\n  ports: [{name: http, port: 8080}]\n",
	"apiVersion: v1\nkind: Event\nmetadata: {name: web.1}\n"
	"involvedObject: {kind: Pod, name: web-1, namespace: prod}\n"
	"reason: Started\nmessage: Started container web\ntype: Normal\ncount: 1\n"
	"source: {component: kubelet, host: node1}\nfirstTimestamp: \"2026-01-01T00:00:00Z\"\n"
	"lastTimestamp: null\n",
	"apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: web-5d4f8, labels: {app: web}}\n"
	"spec:\n  replicas: 2\n  selector: {matchLabels: {app: web, pod-template-hash: 5d4f8}}\n"
	"  template:\n    metadata: {labels: {app: web, pod-template-hash: 5d4f8}}\n"
	"    spec:\n      containers: [{name: web, image: nginx:1.27}]\n",
	/* Argo Rollouts' own canary example (with the managedRoutes Argo requires
	 * for its header route) */
	"apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: rollouts-demo}\n"
	"spec:\n  replicas: 5\n  revisionHistoryLimit: 2\n"
	"  selector: {matchLabels: {app: rollouts-demo}}\n"
	"  strategy:\n    canary:\n      canaryService: rollouts-demo-canary\n"
	"      stableService: rollouts-demo-stable\n"
	"      trafficRouting:\n        plugins:\n          argoproj-labs/gatewayAPI:\n"
	"            httpRoute: argo-rollouts-http-route\n            namespace: default\n"
	"        managedRoutes: [{name: hdr}]\n"
	"      steps:\n      - setWeight: 20\n      - pause: {}\n      - setWeight: 40\n"
	"      - pause: {duration: 10}\n      - setHeaderRoute:\n          name: hdr\n"
	"          match:\n          - headerName: X-Canary\n            headerValue: {exact: \"1\"}\n"
	"      - analysis:\n          templates: [{templateName: success-rate}]\n"
	"          args: [{name: service-name, value: rollouts-demo-canary}]\n"
	"      - setWeight: 100\n"
	"  template:\n    metadata: {labels: {app: rollouts-demo}}\n"
	"    spec:\n      containers:\n      - name: rollouts-demo\n"
	"        image: argoproj/rollouts-demo:blue\n"
	"        ports: [{name: http, containerPort: 8080, protocol: TCP}]\n",
	"apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata: {name: sandboxed}\n"
	"handler: runc\n",
	/* the HPA walkthrough's php-apache autoscaler, with a behavior */
	"apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\n"
	"metadata: {name: php-apache, namespace: default}\n"
	"spec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: php-apache}\n"
	"  minReplicas: 1\n  maxReplicas: 10\n  metrics:\n  - type: Resource\n"
	"    resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}\n"
	"  - type: Pods\n    pods:\n      metric: {name: packets-per-second}\n"
	"      target: {type: AverageValue, averageValue: 1k}\n"
	"  behavior:\n    scaleDown:\n      stabilizationWindowSeconds: 60\n"
	"      policies: [{type: Percent, value: 10, periodSeconds: 60}]\n"
	"    scaleUp:\n      selectPolicy: Disabled\n",
	/* the Kubernetes documentation's Job and CronJob examples */
	"apiVersion: batch/v1\nkind: Job\nmetadata: {name: pi}\nspec:\n  template:\n"
	"    spec:\n      containers:\n      - name: pi\n        image: perl:5.34.0\n"
	"        command: [\"perl\", \"-Mbignum=bpi\", \"-wle\", \"print bpi(2000)\"]\n"
	"      restartPolicy: Never\n  backoffLimit: 4\n",
	"apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: hello}\nspec:\n"
	"  schedule: \"* * * * *\"\n  jobTemplate:\n    spec:\n      template:\n"
	"        spec:\n          containers:\n          - name: hello\n"
	"            image: busybox:1.28\n            imagePullPolicy: IfNotPresent\n"
	"            command: [/bin/sh, -c, date; echo Hello from the Kubernetes cluster]\n"
	"          restartPolicy: OnFailure\n",
	/* Kubernetes' RBAC documentation's examples */
	"apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: build-robot, namespace: default}\n"
	"automountServiceAccountToken: false\nimagePullSecrets: [{name: regcred}]\n",
	"apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n"
	"  namespace: default\n  name: pod-reader\nrules:\n- apiGroups: [\"\"]\n"
	"  resources: [\"pods\", \"pods/log\"]\n  verbs: [\"get\", \"watch\", \"list\"]\n",
	"apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n"
	"  name: monitoring\naggregationRule:\n  clusterRoleSelectors:\n  - matchLabels:\n"
	"      rbac.example.com/aggregate-to-monitoring: \"true\"\nrules: []\n",
	"apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n"
	"  name: \"system:health\"\nrules:\n- nonResourceURLs: [\"/healthz\", \"/healthz/*\"]\n"
	"  verbs: [\"get\", \"post\"]\n- apiGroups: [\"\"]\n  resources: [\"configmaps\"]\n"
	"  resourceNames: [\"my-configmap\"]\n  verbs: [\"update\", \"get\"]\n",
	"apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n"
	"  name: read-pods\n  namespace: default\nsubjects:\n- kind: User\n  name: jane\n"
	"  apiGroup: rbac.authorization.k8s.io\n- kind: ServiceAccount\n  name: default\n"
	"  namespace: kube-system\nroleRef:\n  kind: Role\n  name: pod-reader\n"
	"  apiGroup: rbac.authorization.k8s.io\n",
	"apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n"
	"  name: read-secrets-global\nsubjects:\n- kind: Group\n  name: manager\n"
	"  apiGroup: rbac.authorization.k8s.io\nroleRef:\n  kind: ClusterRole\n"
	"  name: secret-reader\n  apiGroup: rbac.authorization.k8s.io\n",
	/* the VPA's own example (hamster.yaml), in the modes V6 delivers, and a
	 * recommender's checkpoint */
	"apiVersion: autoscaling.k8s.io/v1\nkind: VerticalPodAutoscaler\nmetadata:\n"
	"  name: hamster-vpa\nspec:\n  targetRef:\n    apiVersion: apps/v1\n"
	"    kind: Deployment\n    name: hamster\n  updatePolicy:\n    updateMode: Initial\n"
	"  resourcePolicy:\n    containerPolicies:\n      - containerName: '*'\n"
	"        minAllowed:\n          cpu: 100m\n          memory: 50Mi\n"
	"        maxAllowed:\n          cpu: 1\n          memory: 500Mi\n"
	"        controlledResources: [\"cpu\", \"memory\"]\n",
	"apiVersion: autoscaling.k8s.io/v1\nkind: VerticalPodAutoscalerCheckpoint\n"
	"metadata: {name: hamster-vpa-hamster}\nspec: {vpaObjectName: hamster-vpa, "
	"containerName: hamster}\nstatus:\n  version: v3\n  cpuHistogram:\n"
	"    referenceTimestamp: \"2026-12-07T00:00:00Z\"\n    bucketWeights: {\"8\": 10000}\n"
	"    totalWeight: 1.5\n  totalSamplesCount: 3\n",
	/* the Kubernetes documentation's quota and limit range examples */
	"apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: mem-cpu-demo}\nspec:\n"
	"  hard:\n    requests.cpu: \"1\"\n    requests.memory: 1Gi\n    limits.cpu: \"2\"\n"
	"    limits.memory: 2Gi\n    count/deployments.apps: \"2\"\n",
	"apiVersion: v1\nkind: LimitRange\nmetadata: {name: cpu-resource-constraint}\n"
	"spec:\n  limits:\n  - default: {cpu: 500m}\n    defaultRequest: {cpu: 500m}\n"
	"    max: {cpu: \"1\"}\n    min: {cpu: 100m}\n    type: Container\n",
	/* the Gateway API guide's ReferenceGrant, and an HTTPRoute in v1beta1 (stored as v1) */
	"apiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\n"
	"metadata: {name: refgrant, namespace: bar}\nspec:\n  from:\n"
	"  - group: gateway.networking.k8s.io\n    kind: HTTPRoute\n    namespace: foo\n"
	"  to:\n  - group: \"\"\n    kind: Service\n",
	"apiVersion: gateway.networking.k8s.io/v1beta1\nkind: HTTPRoute\n"
	"metadata: {name: http-app-1, namespace: foo}\nspec:\n"
	"  parentRefs: [{name: my-gateway}]\n  hostnames: [foo.example.com]\n  rules:\n"
	"  - matches: [{path: {type: PathPrefix, value: /bar}}]\n"
	"    backendRefs: [{name: bar-svc, namespace: bar, port: 8080}]\n",
	/* the Gateway API guide's GRPCRoute */
	"apiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\n"
	"metadata: {name: foo-route}\nspec:\n  parentRefs: [{name: example-gateway}]\n"
	"  hostnames: [\"foo.example.com\"]\n  rules:\n"
	"  - matches:\n    - method: {service: com.example.User, method: Login}\n"
	"    backendRefs: [{name: foo-svc, port: 50051}]\n"
	"  - matches:\n    - headers: [{type: Exact, name: magic, value: foo}]\n"
	"      method: {service: com.Example.Login}\n"
	"    backendRefs: [{name: foo-svc, port: 50051}]\n",
};

static void
test_realistic_manifests_of_every_kind_validate(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof realistic / sizeof *realistic; i++) {
		struct errlist e = check(realistic[i]);
		if (e.n) {
			dump(&e);
			fail_msg("manifest %zu rejected", i);
		}
		errlist_free(&e);
	}
	/* A new kind brings a realistic manifest, here or in its own unit test
	 * (gateway, analysis, statefulset, daemonset, node, prometheusrule, application
	 * (test_gitops.c) have theirs). */
	assert_int_equal(kind_count(), 38);
}

/* ReferenceGrant: from and to are required, 1..16 entries of group/kind(/ns). */
static void
test_referencegrant_rules(void **state)
{
	(void)state;
	struct errlist e = check("apiVersion: gateway.networking.k8s.io/v1\n"
	    "kind: ReferenceGrant\nmetadata: {name: g, namespace: n}\n"
	    "spec:\n  from: []\n  to: [{kind: Service}]\n");
	find_err(&e, "spec.from", "FieldValueInvalid");
	find_err(&e, "spec.to[0].group", "FieldValueRequired");
	errlist_free(&e);
	e = check("apiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\n"
	    "metadata: {name: g}\nspec:\n  rules:\n  - matches: [{method: {type: Exact}}]\n");
	find_err(&e, "spec.rules[0].matches[0].method", "FieldValueRequired");
	errlist_free(&e);
	e = check("apiVersion: gateway.networking.k8s.io/v1alpha2\nkind: ReferenceGrant\n"
	    "metadata: {name: g, namespace: n}\nspec: {from: [], to: []}\n");
	find_err(&e, "kind", "FieldValueNotSupported");
	errlist_free(&e);
}

static void
test_unknown_field_has_its_path(void **state)
{
	(void)state;
	struct errlist e = check("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n"
	    "spec:\n  containers:\n  - name: a\n    image: x\n    imagePullSecret: y\n"
	    "  foo: 1\nbar: 2\n");
	assert_int_equal(e.n, 3);
	const struct field_err *fe = find_err(&e, "spec.containers[0].imagePullSecret",
	    "FieldValueUnknown");
	/* The path is the error's field; the message names the key once. */
	assert_string_equal(fe->message, "unknown field \"imagePullSecret\"");
	find_err(&e, "spec.foo", "FieldValueUnknown");
	find_err(&e, "bar", "FieldValueUnknown");
	errlist_free(&e);
}

static void
test_type_errors_required_and_enums(void **state)
{
	(void)state;
	struct errlist e = check("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n"
	    "spec:\n  replicas: three\n  paused: 1\n  selector: {matchLabels: {app: d}}\n"
	    "  template:\n    metadata: {labels: {app: d}}\n    spec:\n"
	    "      restartPolicy: Sometimes\n"
	    "      containers:\n      - name: c\n        imagePullPolicy: Maybe\n"
	    "        ports: [{containerPort: \"80\"}, {protocol: TCP}]\n");
	const struct field_err *fe = find_err(&e, "spec.replicas", "FieldValueTypeInvalid");
	assert_string_equal(fe->message, "expected integer, got string");
	find_err(&e, "spec.paused", "FieldValueTypeInvalid");
	fe = find_err(&e, "spec.template.spec.restartPolicy", "FieldValueNotSupported");
	assert_string_equal(fe->message, "unsupported value \"Sometimes\": supported values: "
	    "\"Always\", \"OnFailure\", \"Never\"");
	find_err(&e, "spec.template.spec.containers[0].imagePullPolicy", "FieldValueNotSupported");
	fe = find_err(&e, "spec.template.spec.containers[0].image", "FieldValueRequired");
	assert_string_equal(fe->message, "required");
	find_err(&e, "spec.template.spec.containers[0].ports[0].containerPort",
	    "FieldValueTypeInvalid");
	find_err(&e, "spec.template.spec.containers[0].ports[1].containerPort",
	    "FieldValueRequired");
	assert_int_equal(e.n, 7);
	errlist_free(&e);
}

static void
test_kind_and_api_version(void **state)
{
	(void)state;
	struct errlist e = check("apiVersion: v1\nkind: Deployment\nmetadata: {name: x}\n");
	const struct field_err *fe = find_err(&e, "kind", NULL);
	assert_string_equal(fe->message, "no kind \"Deployment\" is registered for version \"v1\"");
	errlist_free(&e);
	e = check("metadata: {name: x}\n");
	find_err(&e, "kind", "FieldValueRequired");
	find_err(&e, "apiVersion", "FieldValueRequired");
	errlist_free(&e);
}

static void
test_names_and_labels(void **state)
{
	(void)state;
	struct errlist e = check("apiVersion: v1\nkind: ConfigMap\n"
	    "metadata:\n  name: My_Config\n  namespace: Prod.ns\n"
	    "  labels: {\"bad key!\": x, ok: \"-bad\", example.com/fine: \"\", "
	    "\"/empty\": x, Example.com/x: y}\n"
	    "  finalizers: [example.com/cleanup, \"not valid/\"]\n");
	const struct field_err *fe = find_err(&e, "metadata.name", "FieldValueInvalid");
	assert_non_null(strstr(fe->message, "Invalid value: \"My_Config\": a lowercase RFC 1123 "
	    "subdomain must consist of"));
	fe = find_err(&e, "metadata.namespace", "FieldValueInvalid");
	assert_non_null(strstr(fe->message, "a lowercase RFC 1123 label must consist of lower "
	    "case alphanumeric characters or '-', and must start and end with an alphanumeric "
	    "character (e.g. 'my-name', or '123-abc'"));
	find_err(&e, "metadata.labels[bad key!]", "FieldValueInvalid");
	find_err(&e, "metadata.labels.ok", "FieldValueInvalid");
	find_err(&e, "metadata.labels[/empty]", "FieldValueInvalid");
	find_err(&e, "metadata.labels[Example.com/x]", "FieldValueInvalid");
	find_err(&e, "metadata.finalizers[1]", "FieldValueInvalid");
	assert_int_equal(e.n, 7);
	errlist_free(&e);

	/* Namespace names are labels, Service names DNS-1035 labels */
	e = check("apiVersion: v1\nkind: Namespace\nmetadata: {name: a.b}\n");
	find_err(&e, "metadata.name", "FieldValueInvalid");
	errlist_free(&e);
	e = check("apiVersion: v1\nkind: Service\nmetadata: {name: 1web}\n"
	    "spec: {ports: [{port: 80}]}\n");
	find_err(&e, "metadata.name", "FieldValueInvalid");
	errlist_free(&e);
	e = check("apiVersion: v1\nkind: ConfigMap\nmetadata: {generateName: web-}\n");
	assert_int_equal(e.n, 0);
	errlist_free(&e);
	e = check("apiVersion: v1\nkind: ConfigMap\nmetadata: {labels: {a: b}}\n");
	find_err(&e, "metadata.name", "FieldValueRequired");
	errlist_free(&e);

	assert_null(name_check_dns1123_label("a-1"));
	assert_non_null(name_check_dns1123_label("-a"));
	assert_non_null(name_check_dns1123_label(
	    "a234567890123456789012345678901234567890123456789012345678901234"));
	assert_null(name_check_dns1123_subdomain("a.b-c.d"));
	assert_non_null(name_check_dns1123_subdomain("a..b"));
	assert_null(label_check_key("app.kubernetes.io/name"));
	assert_non_null(label_check_key("a/b/c"));
	assert_null(label_check_value(""));
	assert_null(label_check_value("v1.2_3-x"));
	assert_non_null(label_check_value("v 1"));
}

static void
test_annotations_size_limit(void **state)
{
	(void)state;
	json_t *o = load("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n");
	char *big = malloc(300 * 1024);
	memset(big, 'x', 300 * 1024 - 1);
	big[300 * 1024 - 1] = '\0';
	json_t *ann = json_object();
	json_object_set_new(ann, "big", json_string(big));
	json_object_set_new(obj_metadata(o), "annotations", ann);
	struct errlist e = { NULL, 0, 0 };
	assert_int_equal(obj_validate(o, &e), -EINVAL);
	find_err(&e, "metadata.annotations", "FieldValueTooLong");
	errlist_free(&e);
	free(big);
	json_decref(o);
}

static void
test_selector_must_match_template(void **state)
{
	(void)state;
	struct errlist e = check("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n"
	    "spec:\n  selector: {matchLabels: {app: web}}\n"
	    "  template:\n    metadata: {labels: {app: api}}\n"
	    "    spec: {containers: [{name: c, image: x}]}\n");
	assert_int_equal(e.n, 1);
	const struct field_err *fe = find_err(&e, "spec.template.metadata.labels",
	    "FieldValueInvalid");
	assert_string_equal(fe->message,
	    "Invalid value: {\"app\":\"api\"}: selector does not match template labels");
	errlist_free(&e);

	e = check("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n"
	    "spec:\n  selector: {matchExpressions: [{key: app, operator: NotIn, values: [api]}]}\n"
	    "  template:\n    metadata: {labels: {app: api}}\n"
	    "    spec: {containers: [{name: c, image: x}]}\n");
	find_err(&e, "spec.template.metadata.labels", "FieldValueInvalid");
	errlist_free(&e);

	e = check("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n"
	    "spec:\n  selector: {}\n"
	    "  template:\n    metadata: {labels: {app: api}}\n"
	    "    spec: {containers: [{name: c, image: x}], restartPolicy: Never}\n");
	find_err(&e, "spec.selector", "FieldValueInvalid");
	find_err(&e, "spec.template.spec.restartPolicy", "FieldValueNotSupported");
	errlist_free(&e);
}

static void
test_pod_spec_semantics(void **state)
{
	(void)state;
	struct errlist e = check("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n"
	    "  volumes:\n  - {name: data, emptyDir: {}, hostPath: {path: /x}}\n"
	    "  - {name: data, emptyDir: {}}\n"
	    "  initContainers:\n  - {name: a, image: x, readinessProbe: {exec: {command: [t]}}}\n"
	    "  containers:\n"
	    "  - name: a\n    image: x\n"
	    "    volumeMounts: [{name: nope, mountPath: /m}]\n"
	    "    resources: {requests: {memory: 2Gi}, limits: {memory: 1Gi}}\n"
	    "    livenessProbe: {periodSeconds: 5}\n"
	    "    readinessProbe: {exec: {command: [a]}, tcpSocket: {port: 1}}\n"
	    "    ports: [{containerPort: 70000, name: Http}]\n");
	find_err(&e, "spec.volumes[0]", "FieldValueForbidden");
	find_err(&e, "spec.volumes[1].name", "FieldValueDuplicate");
	find_err(&e, "spec.containers[0].name", "FieldValueDuplicate");
	find_err(&e, "spec.initContainers[0].readinessProbe", "FieldValueForbidden");
	find_err(&e, "spec.containers[0].volumeMounts[0].name", "FieldValueNotFound");
	find_err(&e, "spec.containers[0].resources.requests.memory", "FieldValueInvalid");
	find_err(&e, "spec.containers[0].livenessProbe", "FieldValueRequired");
	find_err(&e, "spec.containers[0].readinessProbe", "FieldValueForbidden");
	find_err(&e, "spec.containers[0].ports[0].containerPort", "FieldValueInvalid");
	find_err(&e, "spec.containers[0].ports[0].name", "FieldValueInvalid");
	errlist_free(&e);

	e = check("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: a, "
	    "image: x, resources: {requests: {cpu: 2}, limits: {cpu: 1500m}}}]}\n");
	find_err(&e, "spec.containers[0].resources.requests.cpu", "FieldValueInvalid");
	errlist_free(&e);
	e = check("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: []}\n");
	find_err(&e, "spec.containers", "FieldValueRequired");
	errlist_free(&e);
}

static void
test_unsupported_fields_and_values(void **state)
{
	(void)state;
	struct errlist e = check("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n"
	    "  hostNetwork: true\n  affinity: {nodeAffinity: {}}\n"
	    "  containers: [{name: a, image: x, readinessProbe: {grpc: {port: 1}}}]\n");
	const struct field_err *fe = find_err(&e, "spec.hostNetwork", "FieldValueForbidden");
	assert_string_equal(fe->message, "not supported by v6");
	find_err(&e, "spec.affinity", "FieldValueForbidden");
	find_err(&e, "spec.containers[0].readinessProbe.grpc", "FieldValueForbidden");
	errlist_free(&e);

	e = check("apiVersion: v1\nkind: Service\nmetadata: {name: s}\n"
	    "spec: {type: LoadBalancer, ports: [{port: 80}]}\n");
	fe = find_err(&e, "spec.type", "FieldValueNotSupported");
	assert_string_equal(fe->message, "unsupported value \"LoadBalancer\": not supported by v6");
	errlist_free(&e);
}

static void
test_service_rules(void **state)
{
	(void)state;
	struct errlist e = check("apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n"
	    "  selector: {app: web}\n"
	    "  ports:\n  - {port: 80}\n  - {name: b, port: 0, targetPort: 99999}\n");
	find_err(&e, "spec.ports[1].port", "FieldValueInvalid");
	find_err(&e, "spec.ports[1].targetPort", "FieldValueInvalid");
	errlist_free(&e);
	e = check("apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n"
	    "  ports:\n  - {port: 80}\n  - {name: b, port: 81}\n  - {name: b, port: 82}\n");
	find_err(&e, "spec.ports[0].name", "FieldValueRequired");
	find_err(&e, "spec.ports[2].name", "FieldValueDuplicate");
	errlist_free(&e);
	e = check("apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n"
	    "  ports:\n  - {port: 80, nodePort: 30080}\n");
	find_err(&e, "spec.ports[0].nodePort", "FieldValueForbidden");
	errlist_free(&e);
	e = check("apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n"
	    "  type: NodePort\n  ports:\n  - {port: 80, nodePort: 30080}\n");
	assert_int_equal(e.n, 0);
	errlist_free(&e);
	e = check("apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {clusterIP: None}\n");
	assert_int_equal(e.n, 0);
	errlist_free(&e);
}

static void
test_configmap_and_secret_data(void **state)
{
	(void)state;
	struct errlist e = check("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n"
	    "data: {a: \"not base64!\", \"b c\": YQ==}\n");
	find_err(&e, "data.a", "FieldValueInvalid");
	find_err(&e, "data[b c]", "FieldValueInvalid");
	errlist_free(&e);
	e = check("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"
	    "data: {a: \"1\", n: 2}\nbinaryData: {a: YQ==}\n");
	find_err(&e, "data.n", "FieldValueTypeInvalid");
	errlist_free(&e);
	e = check("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"
	    "data: {a: \"1\"}\nbinaryData: {a: YQ==}\n");
	find_err(&e, "binaryData.a", "FieldValueDuplicate");
	errlist_free(&e);
}

static void
test_deployment_strategy_rules(void **state)
{
	(void)state;
	struct errlist e = check("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n"
	    "spec:\n  selector: {matchLabels: {a: b}}\n"
	    "  strategy: {type: Recreate, rollingUpdate: {maxSurge: 1}}\n"
	    "  template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c, image: x}]}}\n");
	find_err(&e, "spec.strategy.rollingUpdate", "FieldValueForbidden");
	errlist_free(&e);
	e = check("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n"
	    "spec:\n  selector: {matchLabels: {a: b}}\n  minReadySeconds: 700\n"
	    "  strategy: {rollingUpdate: {maxSurge: 0, maxUnavailable: \"0%\"}}\n"
	    "  template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c, image: x}]}}\n");
	find_err(&e, "spec.strategy.rollingUpdate.maxUnavailable", "FieldValueInvalid");
	find_err(&e, "spec.progressDeadlineSeconds", "FieldValueInvalid");
	errlist_free(&e);
	e = check("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n"
	    "spec:\n  selector: {matchLabels: {a: b}}\n"
	    "  strategy: {rollingUpdate: {maxSurge: \"x%\"}}\n"
	    "  template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c, image: x}]}}\n");
	find_err(&e, "spec.strategy.rollingUpdate.maxSurge", "FieldValueInvalid");
	errlist_free(&e);
}

static void
test_update_rules(void **state)
{
	(void)state;
	json_t *old = load(deployment_yaml);
	json_t *new = json_deep_copy(old);
	struct errlist e = { NULL, 0, 0 };
	json_object_set_new(obj_get_path(new, "spec"), "replicas", json_integer(5));
	assert_int_equal(obj_validate_update(old, new, &e), 0);
	json_object_set_new(obj_get_path(new, "spec.selector.matchLabels"), "x", json_string("y"));
	assert_int_equal(obj_validate_update(old, new, &e), -EINVAL);
	const struct field_err *fe = find_err(&e, "spec.selector", "FieldValueInvalid");
	assert_non_null(strstr(fe->message, "field is immutable"));
	errlist_free(&e);
	json_decref(old);
	json_decref(new);

	old = load("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\nimmutable: true\n"
	    "data: {a: \"1\"}\n");
	new = json_deep_copy(old);
	assert_int_equal(obj_validate_update(old, new, &e), 0);
	json_object_set_new(json_object_get(new, "data"), "a", json_string("2"));
	assert_int_equal(obj_validate_update(old, new, &e), -EINVAL);
	find_err(&e, "data", "FieldValueForbidden");
	errlist_free(&e);
	json_decref(old);
	json_decref(new);
}

static json_t *
defaulted(const char *yaml)
{
	json_t *o = load(yaml);
	struct errlist e = { NULL, 0, 0 };
	if (obj_validate(o, &e)) {
		dump(&e);
		fail_msg("invalid");
	}
	obj_default(o);
	return o;
}

static void
assert_path_str(const json_t *o, const char *path, const char *want)
{
	const char *got = json_string_value(obj_get_path(o, path));
	if (!got || strcmp(got, want))
		fail_msg("%s: want \"%s\", got \"%s\"", path, want, got ? got : "(none)");
}

static void
assert_path_int(const json_t *o, const char *path, json_int_t want)
{
	json_t *v = obj_get_path(o, path);
	if (!json_is_integer(v) || json_integer_value(v) != want)
		fail_msg("%s: want %lld", path, (long long)want);
}

static void
test_defaults(void **state)
{
	(void)state;
	json_t *d = defaulted("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n"
	    "spec:\n  selector: {matchLabels: {a: b}}\n"
	    "  template:\n    metadata: {labels: {a: b}}\n    spec:\n      containers:\n"
	    "      - name: c\n        image: nginx\n        ports: [{containerPort: 80}]\n"
	    "        readinessProbe: {httpGet: {port: 80}}\n"
	    "      - {name: d, image: \"registry:5000/app:1.0\"}\n"
	    "      - {name: e, image: \"app:latest\"}\n");
	assert_path_int(d, "spec.replicas", 1);
	assert_path_int(d, "spec.revisionHistoryLimit", 10);
	assert_path_int(d, "spec.progressDeadlineSeconds", 600);
	assert_path_str(d, "spec.strategy.type", "RollingUpdate");
	assert_path_str(d, "spec.strategy.rollingUpdate.maxSurge", "25%");
	assert_path_str(d, "spec.strategy.rollingUpdate.maxUnavailable", "25%");
	assert_path_str(d, "spec.template.spec.restartPolicy", "Always");
	assert_path_int(d, "spec.template.spec.terminationGracePeriodSeconds", 30);
	assert_path_str(d, "spec.template.spec.dnsPolicy", "ClusterFirst");
	assert_path_str(d, "spec.template.spec.schedulerName", "default-scheduler");
	json_t *cs = obj_get_path(d, "spec.template.spec.containers");
	json_t *c = json_array_get(cs, 0);
	assert_path_str(c, "imagePullPolicy", "Always");
	assert_path_str(c, "terminationMessagePath", "/dev/termination-log");
	assert_path_str(c, "terminationMessagePolicy", "File");
	assert_path_str(json_array_get(json_object_get(c, "ports"), 0), "protocol", "TCP");
	assert_path_int(c, "readinessProbe.periodSeconds", 10);
	assert_path_int(c, "readinessProbe.timeoutSeconds", 1);
	assert_path_int(c, "readinessProbe.successThreshold", 1);
	assert_path_int(c, "readinessProbe.failureThreshold", 3);
	assert_path_str(c, "readinessProbe.httpGet.scheme", "HTTP");
	assert_path_str(c, "readinessProbe.httpGet.path", "/");
	assert_path_str(json_array_get(cs, 1), "imagePullPolicy", "IfNotPresent");
	assert_path_str(json_array_get(cs, 2), "imagePullPolicy", "Always");
	json_decref(d);

	json_t *s = defaulted("apiVersion: v1\nkind: Service\nmetadata: {name: s}\n"
	    "spec: {ports: [{port: 80}]}\n");
	assert_path_str(s, "spec.type", "ClusterIP");
	assert_path_str(s, "spec.sessionAffinity", "None");
	json_t *p = json_array_get(obj_get_path(s, "spec.ports"), 0);
	assert_path_str(p, "protocol", "TCP");
	assert_path_int(p, "targetPort", 80);
	json_decref(s);

	json_t *sec = defaulted("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n"
	    "data: {a: YQ==}\nstringData: {user: admin, b: \"\"}\n");
	assert_path_str(sec, "type", "Opaque");
	assert_path_str(sec, "data.user", "YWRtaW4=");
	assert_path_str(sec, "data.a", "YQ==");
	assert_path_str(sec, "data.b", "");
	assert_null(json_object_get(sec, "stringData"));
	json_decref(sec);

	json_t *ns = defaulted("apiVersion: v1\nkind: Namespace\nmetadata: {name: n}\n");
	assert_string_equal(json_string_value(json_array_get(
	    obj_get_path(ns, "spec.finalizers"), 0)), "kubernetes");
	json_decref(ns);

	json_t *rs = defaulted(realistic[8]);
	assert_path_int(rs, "spec.replicas", 2);
	assert_path_str(rs, "spec.template.spec.restartPolicy", "Always");
	assert_path_str(json_array_get(obj_get_path(rs, "spec.template.spec.containers"), 0),
	    "imagePullPolicy", "IfNotPresent");
	json_decref(rs);
}

static void
test_defaults_are_idempotent_and_still_valid(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof realistic / sizeof *realistic; i++) {
		json_t *o = defaulted(realistic[i]);
		json_t *once = json_deep_copy(o);
		obj_default(o);
		assert_true(json_equal(o, once));
		struct errlist e = { NULL, 0, 0 };
		if (obj_validate(o, &e)) {
			dump(&e);
			fail_msg("manifest %zu invalid after defaulting", i);
		}
		json_decref(once);
		json_decref(o);
	}
}

static void
test_kind_lookups(void **state)
{
	(void)state;
	const char *const deploy_names[] = { "deployment", "deployments", "deploy",
		"Deployment", "DEPLOYMENTS", "deployment.apps", "deployments.apps",
		"deployments.v1.apps", NULL };
	for (const char *const *n = deploy_names; *n; n++) {
		const struct kind *k = kind_find_user(*n);
		if (!k || strcmp(k->kind, "Deployment"))
			fail_msg("%s not found", *n);
	}
	assert_string_equal(kind_find_user("po")->kind, "Pod");
	assert_string_equal(kind_find_user("svc")->kind, "Service");
	assert_string_equal(kind_find_user("ns")->kind, "Namespace");
	assert_string_equal(kind_find_user("ep")->kind, "Endpoints");
	assert_string_equal(kind_find_user("cm")->kind, "ConfigMap");
	assert_string_equal(kind_find_user("rs")->kind, "ReplicaSet");
	assert_string_equal(kind_find_user("ev")->kind, "Event");
	assert_string_equal(kind_find_user("secrets")->kind, "Secret");
	assert_null(kind_find_user("pods.apps"));
	assert_null(kind_find_user("deploy.v2.apps"));
	assert_null(kind_find_user("widgets"));
	assert_null(kind_find_user(""));
	const struct kind *k = kind_find_gvk("apps/v1", "ReplicaSet");
	assert_non_null(k);
	assert_true(k->namespaced && k->has_status);
	assert_ptr_equal(kind_find_resource("apps", "v1", "replicasets"), k);
	assert_null(kind_find_gvk("v1", "ReplicaSet"));
	k = kind_find_resource("", "v1", "namespaces");
	assert_false(k->namespaced);
	char buf[64];
	assert_string_equal(kind_display(kind_find_user("deploy"), buf, sizeof buf),
	    "deployment.apps");
	assert_string_equal(kind_display(kind_find_user("po"), buf, sizeof buf), "pod");
	assert_false(kind_find_user("secret")->has_status);
}

#define RO_HEAD "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: r}\n" \
	"spec:\n  selector: {matchLabels: {app: r}}\n" \
	"  template: {metadata: {labels: {app: r}}, spec: {containers: [{name: a, image: x}]}}\n"

/* Rollouts: one strategy, services in pairs, one action per step, and Argo
 * fields V6 does not run are refused by name. */
static void
test_rollout_rules(void **state)
{
	(void)state;
	struct errlist e = check(RO_HEAD "  strategy: {canary: {}, blueGreen: {activeService: a}}\n");
	find_err(&e, "spec.strategy", "FieldValueRequired");
	errlist_free(&e);
	e = check(RO_HEAD "  strategy: {canary: {canaryService: c}}\n");
	find_err(&e, "spec.strategy.canary.stableService", "FieldValueRequired");
	errlist_free(&e);
	e = check(RO_HEAD "  strategy: {canary: {steps: [{setWeight: 10, pause: {}}]}}\n");
	find_err(&e, "spec.strategy.canary.steps[0]", "FieldValueInvalid");
	errlist_free(&e);
	e = check(RO_HEAD "  strategy: {canary: {steps: [{setWeight: 10}, "
	    "{setWeight: 120}, {experiment: {}}, {pause: {duration: soon}}]}}\n");
	find_err(&e, "spec.strategy.canary.steps[1].setWeight", "FieldValueInvalid");
	find_err(&e, "spec.strategy.canary.steps[2].experiment", NULL);
	find_err(&e, "spec.strategy.canary.steps[3].pause.duration", "FieldValueInvalid");
	errlist_free(&e);
	e = check(RO_HEAD "  strategy: {blueGreen: {activeService: a, previewService: a}}\n");
	find_err(&e, "spec.strategy.blueGreen.previewService", "FieldValueInvalid");
	errlist_free(&e);
	e = check(RO_HEAD "  strategy: {blueGreen: {activeService: a}}\n");
	assert_int_equal(e.n, 0);
	errlist_free(&e);
}

/* Argo's controller marks these InvalidSpec, so V6 refuses them with Argo's words. */
static void
test_rollout_rules_argo_controller(void **state)
{
	(void)state;
	const char *svc = RO_HEAD "  strategy: {canary: {canaryService: c, stableService: s, ";
	const char *gw = "trafficRouting: {plugins: {argoproj-labs/gatewayAPI: {httpRoute: r}}";
	const char *hdr = "{setHeaderRoute: {name: beta, match: [{headerName: X, "
	    "headerValue: {exact: y}}]}}";
	char *y = xasprintf("%sscaleDownDelaySeconds: 5, dynamicStableScale: true, steps: "
	    "[{setCanaryScale: {replicas: 1}}, %s]}}\n", svc, hdr);
	struct errlist e = check(y);
	const struct field_err *fe = find_err(&e, "spec.strategy.canary.scaleDownDelaySeconds",
	    "FieldValueInvalid");
	assert_non_null(strstr(fe->message, "Canary scaleDownDelaySeconds can only be used "
	    "with traffic routing"));
	find_err(&e, "spec.strategy.canary.dynamicStableScale", "FieldValueInvalid");
	fe = find_err(&e, "spec.strategy.canary.trafficRouting", "FieldValueRequired");
	assert_string_equal(fe->message, "SetCanaryScale requires TrafficRouting to be set");
	fe = find_err(&e, "spec.strategy.canary.steps[1].setHeaderRoute", "FieldValueInvalid");
	assert_non_null(strstr(fe->message, "SetHeaderRoute requires TrafficRouting"));
	errlist_free(&e);
	free(y);
	/* with a router, a header route must be one of managedRoutes */
	y = xasprintf("%s%s}, steps: [%s]}}\n", svc, gw, hdr);
	e = check(y);
	fe = find_err(&e, "spec.strategy.canary.trafficRouting.managedRoutes",
	    "FieldValueRequired");
	assert_non_null(strstr(fe->message, "missing field"));
	errlist_free(&e);
	free(y);
	y = xasprintf("%s%s, managedRoutes: [{name: alpha}]}, steps: [%s]}}\n", svc, gw, hdr);
	e = check(y);
	fe = find_err(&e, "spec.strategy.canary.steps[0].setHeaderRoute", "FieldValueInvalid");
	assert_non_null(strstr(fe->message, "does not exist in "
	    "spec.strategy.canary.trafficRouting.managedRoutes"));
	errlist_free(&e);
	free(y);
	/* what Argo accepts, V6 accepts: managedRoutes, the plugin's httpRoutes list */
	y = xasprintf("%sscaleDownDelaySeconds: 5, trafficRouting: {plugins: "
	    "{argoproj-labs/gatewayAPI: {httpRoutes: [{name: r1, useHeaderRoutes: true}], "
	    "namespace: default}}, managedRoutes: [{name: beta}]}, "
	    "steps: [{setCanaryScale: {replicas: 1}}, %s, {setWeight: 50}]}}\n", svc, hdr);
	e = check(y);
	dump(&e);
	assert_int_equal(e.n, 0);
	errlist_free(&e);
	free(y);
	/* a plugin with no route at all */
	e = check(RO_HEAD "  strategy: {canary: {canaryService: c, stableService: s, "
	    "trafficRouting: {plugins: {argoproj-labs/gatewayAPI: {namespace: d}}}}}\n");
	find_err(&e, "spec.strategy.canary.trafficRouting.plugins[argoproj-labs/gatewayAPI]."
	    "httpRoute", "FieldValueRequired");
	errlist_free(&e);
	/* a valid upstream field V6 does not honour is named */
	e = check(RO_HEAD "  strategy: {canary: {canaryService: c, stableService: s, "
	    "trafficRouting: {maxTrafficWeight: 1000, plugins: {argoproj-labs/gatewayAPI: "
	    "{httpRoute: r}}}}}\n");
	fe = find_err(&e, "spec.strategy.canary.trafficRouting.maxTrafficWeight", NULL);
	assert_string_equal(fe->message, "not supported by v6");
	errlist_free(&e);
}

#define AT_HEAD "apiVersion: argoproj.io/v1alpha1\nkind: AnalysisTemplate\n" \
	"metadata: {name: t}\nspec:\n  metrics:\n  - name: sr\n    provider:\n"

/* V6's traffic provider is an Argo metric plugin; the first form, a `v6` provider
 * Argo's schema refuses, is refused with the way to write it. */
static void
test_analysis_v6_provider_is_a_plugin(void **state)
{
	(void)state;
	struct errlist e = check(AT_HEAD "      plugin:\n        v6.dev/traffic: "
	    "{revision: abc, metric: successRate, window: 10s}\n");
	dump(&e);
	assert_int_equal(e.n, 0);
	errlist_free(&e);
	e = check(AT_HEAD "      v6: {revision: abc, metric: successRate}\n");
	const struct field_err *fe = find_err(&e, "spec.metrics[0].provider.v6",
	    "FieldValueInvalid");
	assert_non_null(strstr(fe->message, "plugin: {\"v6.dev/traffic\""));
	errlist_free(&e);
	e = check(AT_HEAD "      plugin:\n        v6.dev/traffic: {metric: p99, window: 10ms}\n");
	find_err(&e, "spec.metrics[0].provider", "FieldValueRequired");
	find_err(&e, "spec.metrics[0].provider", "FieldValueInvalid");
	errlist_free(&e);
	e = check(AT_HEAD "      plugin:\n        argoproj-labs/sample: {address: x}\n");
	find_err(&e, "spec.metrics[0].provider.plugin[argoproj-labs/sample]", NULL);
	errlist_free(&e);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_realistic_manifests_of_every_kind_validate),
		cmocka_unit_test(test_unknown_field_has_its_path),
		cmocka_unit_test(test_referencegrant_rules),
		cmocka_unit_test(test_type_errors_required_and_enums),
		cmocka_unit_test(test_kind_and_api_version),
		cmocka_unit_test(test_names_and_labels),
		cmocka_unit_test(test_annotations_size_limit),
		cmocka_unit_test(test_selector_must_match_template),
		cmocka_unit_test(test_pod_spec_semantics),
		cmocka_unit_test(test_unsupported_fields_and_values),
		cmocka_unit_test(test_service_rules),
		cmocka_unit_test(test_configmap_and_secret_data),
		cmocka_unit_test(test_deployment_strategy_rules),
		cmocka_unit_test(test_update_rules),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_defaults_are_idempotent_and_still_valid),
		cmocka_unit_test(test_kind_lookups),
		cmocka_unit_test(test_rollout_rules),
		cmocka_unit_test(test_rollout_rules_argo_controller),
		cmocka_unit_test(test_analysis_v6_provider_is_a_plugin),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
