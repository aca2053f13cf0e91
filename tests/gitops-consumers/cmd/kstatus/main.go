// Command kstatus prints the status kstatus (sigs.k8s.io/cli-utils/pkg/kstatus/status) computes
// for a Kubernetes object: what `kpt live status`, cli-utils' apply and other kstatus
// consumers see.
//
//	kstatus < OBJECT.json
//
// Output: {"status": "InProgress|Failed|Current|Terminating|Unknown|NotFound", "message": "..."}.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type result struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

func main() {
	data, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail(err)
	}
	obj := &unstructured.Unstructured{}
	if err := obj.UnmarshalJSON(data); err != nil {
		fail(fmt.Errorf("reading the object: %w", err))
	}
	computed, err := status.Compute(obj)
	if err != nil {
		fail(err)
	}
	out := result{Status: computed.Status.String(), Message: computed.Message}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "kstatus:", err)
	os.Exit(2)
}
