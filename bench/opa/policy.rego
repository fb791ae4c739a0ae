# The OPA side of the benchmark: the two pod rules a comparison can hold OPA to, privileged
# containers and host namespaces, answering an AdmissionReview the way a webhook must.
#
# Queried as POST /v0/data/bulwark/admission/response with the AdmissionReview itself as
# the body (v0 takes the raw document as input and returns the value without a wrapper),
# so OPA receives the same bytes Bulwark does and answers a body the API server can read.
package bulwark.admission

spec := object.get(input.request, ["object", "spec"], {})

# Every container list of the pod, as one array: no set of objects to hash.
containers := array.concat(
	array.concat(object.get(spec, "containers", []), object.get(spec, "initContainers", [])),
	object.get(spec, "ephemeralContainers", []),
)

deny contains message if {
	some container in containers
	container.securityContext.privileged == true
	message := sprintf("container %q is privileged", [container.name])
}

deny contains message if {
	some field in ["hostNetwork", "hostPID", "hostIPC"]
	spec[field] == true
	message := sprintf("spec.%s shares the node's namespace", [field])
}

verdict := {"uid": input.request.uid, "allowed": true} if {
	count(deny) == 0
} else := {
	"uid": input.request.uid,
	"allowed": false,
	"status": {"code": 403, "reason": "Forbidden", "message": concat("; ", sort(deny))},
}

response := {"apiVersion": input.apiVersion, "kind": "AdmissionReview", "response": verdict}
