// Command flux-health prints the status Flux's kustomize-controller sees for a Kubernetes
// object when a Kustomization with `wait: true` or `healthChecks` waits for it.
//
//	flux-health [HEALTH_CHECK.json] < OBJECT.json
//
// Without an argument the object goes through Flux's kstatus (github.com/fluxcd/cli-utils, the
// fork kustomize-controller uses). With one, the file holds one `spec.healthCheckExprs` entry of
// a Kustomization ({"apiVersion", "kind", "current", "failed", "inProgress"}); for an object of
// that kind Flux evaluates those CEL expressions instead (github.com/fluxcd/pkg/runtime/cel),
// any other kind still goes through kstatus.
//
// Output: {"status": "...", "message": "...", "reader": "kstatus" or "cel"}. An evaluation error
// is status Unknown with the error as the message, as Flux's status readers report it.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"github.com/fluxcd/pkg/apis/kustomize"
	"github.com/fluxcd/pkg/runtime/cel"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

type result struct {
	Status  string `json:"status"`
	Message string `json:"message"`
	Reader  string `json:"reader"`
}

func main() {
	if len(os.Args) > 2 {
		fmt.Fprintln(os.Stderr, "usage: flux-health [HEALTH_CHECK.json] < OBJECT.json")
		os.Exit(2)
	}
	data, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail(err)
	}
	obj := &unstructured.Unstructured{}
	if err := obj.UnmarshalJSON(data); err != nil {
		fail(fmt.Errorf("reading the object: %w", err))
	}
	var check *kustomize.CustomHealthCheck
	if len(os.Args) == 2 {
		check, err = readHealthCheck(os.Args[1])
		if err != nil {
			fail(err)
		}
	}
	out := health(obj, check)
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fail(err)
	}
}

func readHealthCheck(path string) (*kustomize.CustomHealthCheck, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	check := &kustomize.CustomHealthCheck{}
	if err := json.Unmarshal(data, check); err != nil {
		return nil, fmt.Errorf("reading the health check: %w", err)
	}
	return check, nil
}

func health(obj *unstructured.Unstructured, check *kustomize.CustomHealthCheck) result {
	if check != nil && appliesTo(check, obj) {
		evaluator, err := cel.NewStatusEvaluator(&check.HealthCheckExpressions)
		if err != nil {
			// kustomize-controller refuses such a Kustomization before any health check.
			fail(err)
		}
		return fromResult(evaluator.Evaluate(context.Background(), obj))("cel")
	}
	return fromResult(status.Compute(obj))("kstatus")
}

// appliesTo mirrors the CEL status reader's Supports: the entry names the object's group and
// kind, or only its group.
func appliesTo(check *kustomize.CustomHealthCheck, obj *unstructured.Unstructured) bool {
	wanted := schema.FromAPIVersionAndKind(check.APIVersion, check.Kind).GroupKind()
	actual := obj.GroupVersionKind().GroupKind()
	return wanted == actual || (check.Kind == "" && wanted.Group == actual.Group)
}

func fromResult(computed *status.Result, err error) func(reader string) result {
	return func(reader string) result {
		if err != nil {
			return result{Status: status.UnknownStatus.String(), Message: err.Error(), Reader: reader}
		}
		return result{Status: computed.Status.String(), Message: computed.Message, Reader: reader}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "flux-health:", err)
	os.Exit(2)
}
