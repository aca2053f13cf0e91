// judge is a DLI stand-in whose only job is to judge AK/SK signatures with the official Go
// SDK's signing code: every request is re-signed as the SDK would sign it (see verify) and
// refused with 401 APIGW.0301, the canonical request echoed, when the signatures differ.
// Signed requests get DLI-shaped answers built from the SDK's models: batch stop (an array,
// one element per job), job detail and job list (the documented job_list layout), over a fixed
// catalogue of jobs 128 and 137 (job_running) and 256 (job_cancel_success).
//
// It reads DLI_PROJECT_ID, DLI_ACCESS_KEY, DLI_SECRET_KEY, DLI_SECURITY_TOKEN (temporary
// credentials: the token must come signed) and DLI_PATH_PREFIX (the prefix as it appears in
// the URL, percent-encoded, e.g. /dli%20gw; empty for none). It listens on a free loopback
// port, checks itself against the SDK as a client, prints the endpoint to give a DLI client
// (address and prefix) on stdout, and serves until its stdin closes.
package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/sdkerr"

	"dli-stop-operator.invalid/sdk-conformance/sdkdli"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "judge: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	rawPrefix := os.Getenv("DLI_PATH_PREFIX")
	pathPrefix, err := url.PathUnescape(rawPrefix)
	if err != nil || (rawPrefix != "" && (!strings.HasPrefix(rawPrefix, "/") || strings.HasSuffix(rawPrefix, "/"))) {
		return fmt.Errorf("DLI_PATH_PREFIX %q must be a percent-encoded path that starts and does not end with /", rawPrefix)
	}
	projectID := os.Getenv("DLI_PROJECT_ID")
	accepted := credentials{
		accessKey:     os.Getenv("DLI_ACCESS_KEY"),
		secretKey:     os.Getenv("DLI_SECRET_KEY"),
		securityToken: os.Getenv("DLI_SECURITY_TOKEN"),
	}
	if projectID == "" || accepted.accessKey == "" || accepted.secretKey == "" {
		return errors.New("DLI_PROJECT_ID, DLI_ACCESS_KEY and DLI_SECRET_KEY are needed")
	}
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	server := &http.Server{
		Handler: &judge{
			pathPrefix: pathPrefix,
			projectID:  projectID,
			accepted:   accepted,
			jobs:       catalogue(projectID, time.Now()),
		},
		ReadHeaderTimeout: 30 * time.Second,
	}
	served := make(chan error, 1)
	go func() { served <- server.Serve(listener) }()
	endpoint := "http://" + listener.Addr().String() + rawPrefix
	if err := selfCheck(endpoint, projectID, accepted); err != nil {
		return fmt.Errorf("self-check against the SDK failed: %w", err)
	}
	fmt.Println(endpoint)
	stdinClosed := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(stdinClosed)
	}()
	select {
	case err := <-served:
		return err
	case <-stdinClosed:
		return nil
	}
}

// selfCheck proves the judge fair before it judges: the SDK's own calls, signed by the SDK,
// pass, their answers parse in the SDK's models with nothing lost, and a wrong secret key is
// refused.
func selfCheck(endpoint, projectID string, accepted credentials) error {
	config := sdkdli.Config{
		Endpoint:      endpoint,
		ProjectID:     projectID,
		AccessKey:     accepted.accessKey,
		SecretKey:     accepted.secretKey,
		SecurityToken: accepted.securityToken,
	}
	client, err := sdkdli.New(config)
	if err != nil {
		return err
	}
	checks := []struct {
		name string
		call func() (any, error)
	}{
		{"BatchStopFlinkJobs", func() (any, error) {
			response, err := client.BatchStop([]int64{128, 137})
			if err != nil {
				return nil, err
			}
			return response.Body, nil
		}},
		{"ShowFlinkJob", func() (any, error) { return client.ShowJob(256) }},
		{"ListFlinkJobs", func() (any, error) { return client.ListJobs(2, 1) }},
	}
	for _, check := range checks {
		held, err := check.call()
		if err != nil {
			return fmt.Errorf("%s: %v", check.name, err)
		}
		if mismatches := sdkdli.Mismatches(client.Last().Body, held); len(mismatches) > 0 {
			return fmt.Errorf("%s: the SDK's model differs from the answer: %s", check.name, strings.Join(mismatches, "; "))
		}
	}
	config.SecretKey = accepted.secretKey + "-wrong"
	forger, err := sdkdli.New(config)
	if err != nil {
		return err
	}
	_, err = forger.ShowJob(128)
	var refused *sdkerr.ServiceResponseError
	if !errors.As(err, &refused) || refused.StatusCode != http.StatusUnauthorized || refused.ErrorCode != "APIGW.0301" {
		return fmt.Errorf("a wrong secret key was not refused with 401 APIGW.0301: %v", err)
	}
	return nil
}
