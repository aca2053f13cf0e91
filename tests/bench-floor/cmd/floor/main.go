// Command floor drains a backlog of JobStopRequests the way the ecosystem's reference client
// would: client-go, one HTTP/2 connection, a pool of workers, and for each request exactly the
// operator's two status writes (the write-ahead claim, then the outcome), with the bodies the
// operator writes. It is the yardstick `dli-bench` measures the operator's backlog drain by.
//
//	floor -kubeconfig FILE -namespace NS -workers 16 < STATUSES.json
//
// STATUSES.json maps each request's name to its two statuses, [claim, outcome]. Output, on
// stdout: {"requests": N, "seconds": wall time, "cpuSeconds": ..., "maxRssKiB": ...}.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
)

var requests = schema.GroupVersionResource{
	Group:    "dli.stop-operator.io",
	Version:  "v1alpha1",
	Resource: "jobstoprequests",
}

type report struct {
	Requests   int     `json:"requests"`
	Seconds    float64 `json:"seconds"`
	CPUSeconds float64 `json:"cpuSeconds"`
	MaxRSSKiB  int64   `json:"maxRssKiB"`
}

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the API server")
	namespace := flag.String("namespace", "", "namespace of the backlog")
	workers := flag.Int("workers", 16, "requests written at once")
	flag.Parse()

	var statuses map[string][2]map[string]any
	if err := json.NewDecoder(os.Stdin).Decode(&statuses); err != nil {
		fail(fmt.Errorf("reading the statuses: %w", err))
	}
	config, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		fail(err)
	}
	// The operator has no client-side rate limit; the floor must not have one either, or it
	// would measure client-go's default 5 requests/s instead of the API server.
	config.QPS = -1
	client, err := dynamic.NewForConfig(config)
	if err != nil {
		fail(err)
	}
	api := client.Resource(requests).Namespace(*namespace)
	ctx := context.Background()

	started := time.Now()
	list, err := api.List(ctx, metav1.ListOptions{})
	if err != nil {
		fail(fmt.Errorf("listing the backlog: %w", err))
	}
	queue := make(chan unstructured.Unstructured)
	errs := make(chan error, *workers)
	var wg sync.WaitGroup
	for range *workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for object := range queue {
				if err := finish(ctx, api, object, statuses[object.GetName()]); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for _, object := range list.Items {
		queue <- object
	}
	close(queue)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		fail(err)
	}
	out := report{Requests: len(list.Items), Seconds: time.Since(started).Seconds()}
	var usage syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &usage) == nil {
		out.CPUSeconds = seconds(usage.Utime) + seconds(usage.Stime)
		out.MaxRSSKiB = usage.Maxrss
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fail(err)
	}
}

// finish writes the claim and then the outcome as the status of object, each a PUT of the
// status subresource based on the object the previous write returned.
func finish(ctx context.Context, api dynamic.ResourceInterface, object unstructured.Unstructured, writes [2]map[string]any) error {
	current := &object
	for _, status := range writes {
		if status == nil {
			return fmt.Errorf("no statuses given for %s", object.GetName())
		}
		current.Object["status"] = status
		updated, err := api.UpdateStatus(ctx, current, metav1.UpdateOptions{})
		if err != nil {
			return fmt.Errorf("writing the status of %s: %w", object.GetName(), err)
		}
		current = updated
	}
	return nil
}

func seconds(t syscall.Timeval) float64 {
	return float64(t.Sec) + float64(t.Usec)/1e6
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "floor:", err)
	os.Exit(1)
}
