// Command argocd-health prints the health Argo CD shows for a Kubernetes object whose kind has
// a custom Lua health check in argocd-cm (resource.customizations.health.<group>_<kind>).
//
//	argocd-health SCRIPT < OBJECT.json
//
// The object is read as JSON (as the API server returns it); the health is printed as JSON,
// {"status": "...", "message": "..."}, or null when the script returns nothing.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: argocd-health SCRIPT < OBJECT.json")
		os.Exit(2)
	}
	script, err := os.ReadFile(os.Args[1])
	if err != nil {
		fail(err)
	}
	obj, err := readObject(os.Stdin)
	if err != nil {
		fail(err)
	}
	encoder := json.NewEncoder(os.Stdout)
	encoder.SetEscapeHTML(false)
	if err := encoder.Encode(resourceHealth(obj, string(script))); err != nil {
		fail(err)
	}
}

// readObject decodes an object the way Argo CD's cluster cache holds it: unstructured, whole
// numbers as int64.
func readObject(r io.Reader) (*unstructured.Unstructured, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	obj := &unstructured.Unstructured{}
	if err := obj.UnmarshalJSON(data); err != nil {
		return nil, fmt.Errorf("reading the object: %w", err)
	}
	return obj, nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "argocd-health:", err)
	os.Exit(2)
}
