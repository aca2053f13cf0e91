// Package sdkdli calls DLI's Flink job APIs through the official Huawei Cloud Go SDK
// (services/dli/v1) and keeps the raw answer next to what the SDK's models made of it.
package sdkdli

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/auth/basic"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/config"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/def"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/httphandler"
	dli "github.com/huaweicloud/huaweicloud-sdk-go-v3/services/dli/v1"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/services/dli/v1/model"
)

// Config says where DLI is and how to sign in.
type Config struct {
	// Endpoint is the DLI base URL; it may carry a path prefix, percent-encoded as in any URL
	// (e.g. http://127.0.0.1:8080/dli%20gw).
	Endpoint      string
	ProjectID     string
	AccessKey     string
	SecretKey     string
	SecurityToken string
}

// Exchange is what went over the wire in the last call.
type Exchange struct {
	// RequestPath is the path as the SDK sent it (percent-encoded).
	RequestPath string
	HTTPStatus  int
	Body        []byte
}

// Client is an SDK DliClient that records its last exchange.
type Client struct {
	sdk *dli.DliClient
	// pathPrefix is the endpoint's path, decoded (the SDK's requests hold their paths decoded).
	pathPrefix string
	last       *Exchange
}

// New builds the SDK client for cfg.
//
// The SDK cannot take a path prefix from its endpoint: DefaultHttpRequest.ConvertRequest sets
// the URL's whole path to the API's path, so the endpoint's path is dropped. A caller behind a
// gateway with a prefix has to put the prefix into the API path itself, which is what the
// calls below do (see call); the SDK then sends and signs that path as its own.
func New(cfg Config) (*Client, error) {
	endpoint, err := url.Parse(cfg.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("endpoint %q: %w", cfg.Endpoint, err)
	}
	client := &Client{pathPrefix: strings.TrimSuffix(endpoint.Path, "/"), last: &Exchange{}}
	endpoint.Path, endpoint.RawPath = "", ""
	credentials, err := basic.NewCredentialsBuilder().
		WithAk(cfg.AccessKey).
		WithSk(cfg.SecretKey).
		WithSecurityToken(cfg.SecurityToken).
		WithProjectId(cfg.ProjectID).
		SafeBuild()
	if err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	handler := httphandler.NewHttpHandler().
		AddRequestHandler(func(request http.Request) {
			client.last.RequestPath = request.URL.EscapedPath()
		}).
		AddResponseHandler(func(response http.Response) {
			client.last.HTTPStatus = response.StatusCode
			client.last.Body = readAll(response.Body)
		})
	// With a User-Agent of its own the SDK does not make up an application id and store it
	// in ~/.huaweicloud.
	httpConfig := config.DefaultHttpConfig().
		WithTimeout(30 * time.Second).
		WithUserAgent("dli-stop-operator-sdk-conformance").
		WithHttpHandler(handler)
	hcClient, err := dli.DliClientBuilder().
		WithEndpoints([]string{endpoint.String()}).
		WithCredential(credentials).
		WithHttpConfig(httpConfig).
		SafeBuild()
	if err != nil {
		return nil, fmt.Errorf("SDK client: %w", err)
	}
	client.sdk = dli.NewDliClient(hcClient)
	return client, nil
}

func readAll(body io.ReadCloser) []byte {
	if body == nil {
		return nil
	}
	data, err := io.ReadAll(body)
	if err != nil {
		return []byte(fmt.Sprintf("(cannot read the answer: %v)", err))
	}
	return data
}

// Last is the exchange of the latest call.
func (c *Client) Last() Exchange {
	return *c.last
}

// BatchStop is BatchStopFlinkJobs without a savepoint.
func (c *Client) BatchStop(jobIDs []int64) (*model.BatchStopFlinkJobsResponse, error) {
	triggerSavepoint := false
	request := &model.BatchStopFlinkJobsRequest{Body: &model.StopFlinkJobsRequestBody{
		JobIds:           jobIDs,
		TriggerSavepoint: &triggerSavepoint,
	}}
	return call(c, request, c.sdk.BatchStopFlinkJobs, dli.GenReqDefForBatchStopFlinkJobs)
}

// ShowJob is ShowFlinkJob.
func (c *Client) ShowJob(jobID int64) (*model.ShowFlinkJobResponse, error) {
	return call(c, &model.ShowFlinkJobRequest{JobId: jobID}, c.sdk.ShowFlinkJob, dli.GenReqDefForShowFlinkJob)
}

// ListJobs is ListFlinkJobs with limit and offset.
func (c *Client) ListJobs(limit int32, offset int64) (*model.ListFlinkJobsResponse, error) {
	request := &model.ListFlinkJobsRequest{Limit: &limit, Offset: &offset}
	return call(c, request, c.sdk.ListFlinkJobs, dli.GenReqDefForListFlinkJobs)
}

// ListJobsFiltered is ListFlinkJobs with the SDK's name and queue_name filters; an empty
// filter is left out.
func (c *Client) ListJobsFiltered(limit int32, offset int64, name, queueName string) (*model.ListFlinkJobsResponse, error) {
	request := &model.ListFlinkJobsRequest{Limit: &limit, Offset: &offset}
	if name != "" {
		request.Name = &name
	}
	if queueName != "" {
		request.QueueName = &queueName
	}
	return call(c, request, c.sdk.ListFlinkJobs, dli.GenReqDefForListFlinkJobs)
}

// call runs the SDK's generated method, or, under a path prefix, what that method does
// (GenReqDefFor* then HcClient.Sync) with the prefix in front of the API path.
func call[Request, Response any](
	c *Client,
	request *Request,
	method func(*Request) (*Response, error),
	requestDef func() *def.HttpRequestDef,
) (*Response, error) {
	c.last = &Exchange{}
	if c.pathPrefix == "" {
		return method(request)
	}
	prefixed := requestDef()
	prefixed.Path = c.pathPrefix + prefixed.Path
	response, err := c.sdk.HcClient.Sync(request, prefixed)
	if err != nil {
		return nil, err
	}
	return response.(*Response), nil
}
