// sdk-client makes one DLI call with the official Huawei Cloud Go SDK and prints, as one JSON
// object, what went over the wire and what the SDK made of it:
//
//	sdk-client stop JOB_ID...        BatchStopFlinkJobs (no savepoint)
//	sdk-client detail JOB_ID         ShowFlinkJob
//	sdk-client list LIMIT OFFSET     ListFlinkJobs
//	sdk-client list-filtered LIMIT OFFSET NAME QUEUE
//	                                 ListFlinkJobs with name and queue_name ("" leaves one out)
//
// The connection comes from DLI_ENDPOINT (may carry a path prefix), DLI_PROJECT_ID,
// DLI_ACCESS_KEY, DLI_SECRET_KEY and DLI_SECURITY_TOKEN (temporary credentials). It exits 0
// whenever the call was made, whatever DLI or the SDK said: the caller judges the report.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/sdkerr"

	"dli-stop-operator.invalid/sdk-conformance/sdkdli"
)

type report struct {
	Operation string `json:"operation"`
	// RequestPath is the path the SDK sent, percent-encoded.
	RequestPath string `json:"request_path"`
	HTTPStatus  int    `json:"http_status"`
	// Answer is the body as received: JSON as it is, anything else as a string.
	Answer json.RawMessage `json:"answer"`
	// Model is the SDK's response model re-marshalled; null when the SDK returned an error.
	Model any `json:"model"`
	// Mismatches lists what the SDK's model (or error) lost or changed from the answer.
	Mismatches []string   `json:"mismatches"`
	Error      *callError `json:"error"`
}

type callError struct {
	// Kind is "service_response" for the SDK's ServiceResponseError, "other" otherwise.
	Kind         string `json:"kind"`
	StatusCode   int    `json:"status_code"`
	ErrorCode    string `json:"error_code"`
	ErrorMessage string `json:"error_message"`
	RequestID    string `json:"request_id"`
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "sdk-client: %v\n", err)
		os.Exit(2)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errUsage
	}
	client, err := sdkdli.New(sdkdli.Config{
		Endpoint:      os.Getenv("DLI_ENDPOINT"),
		ProjectID:     os.Getenv("DLI_PROJECT_ID"),
		AccessKey:     os.Getenv("DLI_ACCESS_KEY"),
		SecretKey:     os.Getenv("DLI_SECRET_KEY"),
		SecurityToken: os.Getenv("DLI_SECURITY_TOKEN"),
	})
	if err != nil {
		return err
	}
	numeric, filters := args[1:], []string(nil)
	if args[0] == "list-filtered" && len(args) == 5 {
		numeric, filters = args[1:3], args[3:5]
	}
	numbers, err := parseNumbers(numeric)
	if err != nil {
		return err
	}
	held, err := call(client, args[0], numbers, filters)
	if errors.Is(err, errUsage) {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(describe(args[0], client.Last(), held, err))
}

var errUsage = errors.New("usage: sdk-client stop JOB_ID... | detail JOB_ID | list LIMIT OFFSET | list-filtered LIMIT OFFSET NAME QUEUE")

// call makes the call and returns the SDK's response model (nil on error).
func call(client *sdkdli.Client, operation string, numbers []int64, filters []string) (any, error) {
	switch {
	case operation == "stop" && len(numbers) > 0:
		response, err := client.BatchStop(numbers)
		if err != nil {
			return nil, err
		}
		return response.Body, nil
	case operation == "detail" && len(numbers) == 1:
		response, err := client.ShowJob(numbers[0])
		if err != nil {
			return nil, err
		}
		return response, nil
	case operation == "list" && len(numbers) == 2:
		response, err := client.ListJobs(int32(numbers[0]), numbers[1])
		if err != nil {
			return nil, err
		}
		return response, nil
	case operation == "list-filtered" && len(numbers) == 2 && len(filters) == 2:
		response, err := client.ListJobsFiltered(int32(numbers[0]), numbers[1], filters[0], filters[1])
		if err != nil {
			return nil, err
		}
		return response, nil
	default:
		return nil, errUsage
	}
}

func parseNumbers(args []string) ([]int64, error) {
	numbers := make([]int64, 0, len(args))
	for _, arg := range args {
		number, err := strconv.ParseInt(arg, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", arg)
		}
		numbers = append(numbers, number)
	}
	return numbers, nil
}

func describe(operation string, exchange sdkdli.Exchange, held any, err error) report {
	out := report{
		Operation:   operation,
		RequestPath: exchange.RequestPath,
		HTTPStatus:  exchange.HTTPStatus,
		Answer:      asJSON(exchange.Body),
		Model:       held,
		Mismatches:  []string{},
	}
	var serviceError *sdkerr.ServiceResponseError
	switch {
	case err == nil:
		out.Mismatches = append(out.Mismatches, sdkdli.Mismatches(exchange.Body, held)...)
	case errors.As(err, &serviceError):
		out.Error = &callError{
			Kind:         "service_response",
			StatusCode:   serviceError.StatusCode,
			ErrorCode:    serviceError.ErrorCode,
			ErrorMessage: serviceError.ErrorMessage,
			RequestID:    serviceError.RequestId,
		}
		// Below 400 the SDK reports that it could not read a success answer: that is the
		// finding itself, not an error answer to compare.
		if serviceError.StatusCode >= 400 {
			out.Mismatches = append(out.Mismatches, sdkdli.ErrorMismatches(exchange.Body, serviceError)...)
		}
	default:
		out.Error = &callError{Kind: "other", ErrorMessage: err.Error()}
	}
	return out
}

func asJSON(body []byte) json.RawMessage {
	if len(body) > 0 && json.Valid(body) {
		return body
	}
	text, _ := json.Marshal(string(body))
	return text
}
