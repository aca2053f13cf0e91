package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/huaweicloud/huaweicloud-sdk-go-v3/services/dli/v1/model"
)

const (
	// DLI's page size bounds for the job list.
	maxListLimit     = 100
	defaultListLimit = 10
	maxRequestBytes  = 1 << 20
	stopDelivered    = "The request for stopping DLI jobs is delivered successfully."
)

// judge answers DLI's Flink job calls under pathPrefix (decoded) for one project, after
// checking every request's signature.
type judge struct {
	pathPrefix string
	projectID  string
	accepted   credentials
	jobs       []model.FlinkJob
}

func (j *judge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	requestID := newRequestID()
	w.Header().Set("X-Request-Id", requestID)
	jobsPath := j.pathPrefix + "/v1.0/" + j.projectID + "/streaming/jobs"
	var handle func(received) (int, any)
	switch {
	case r.Method == http.MethodPost && r.URL.Path == jobsPath+"/stop":
		handle = j.batchStop
	case r.Method == http.MethodGet && r.URL.Path == jobsPath:
		handle = j.listJobs
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, jobsPath+"/"):
		handle = j.jobDetail(strings.TrimPrefix(r.URL.Path, jobsPath+"/"))
	default:
		writeJSON(w, http.StatusNotFound, gatewayError("APIGW.0101",
			fmt.Sprintf("The API does not exist or has not been published in the environment: %s %s", r.Method, r.URL.EscapedPath()), requestID))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBytes))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, dliError("DLI.0001", "Cannot read the request body: "+err.Error()))
		return
	}
	request := fromHTTP(r, body)
	if refused := verify(request, j.accepted, time.Now()); refused != nil {
		writeJSON(w, http.StatusUnauthorized, gatewayError("APIGW.0301", refused.message(), requestID))
		return
	}
	status, answer := handle(request)
	writeJSON(w, status, answer)
}

// batchStop reads the body into the SDK's request model, so a body the SDK could not have
// sent (an unknown field, a wrong type) is refused.
func (j *judge) batchStop(r received) (int, any) {
	decoder := json.NewDecoder(bytes.NewReader(r.body))
	decoder.DisallowUnknownFields()
	var body model.StopFlinkJobsRequestBody
	if err := decoder.Decode(&body); err != nil {
		return http.StatusBadRequest, dliError("DLI.0001", "Parameter check failed: "+err.Error())
	}
	if len(body.JobIds) == 0 {
		return http.StatusBadRequest, dliError("DLI.0001", "Parameter check failed: job_ids must not be empty.")
	}
	answer := make([]model.FlinkSuccessResponse, 0, len(body.JobIds))
	for _, id := range body.JobIds {
		if j.job(id) == nil {
			return unknownJob(id)
		}
		answer = append(answer, model.FlinkSuccessResponse{IsSuccess: ptr("true"), Message: ptr(stopDelivered)})
	}
	return http.StatusOK, answer
}

func (j *judge) jobDetail(rawID string) func(received) (int, any) {
	return func(received) (int, any) {
		id, err := strconv.ParseInt(rawID, 10, 64)
		if err != nil {
			return http.StatusBadRequest, dliError("DLI.0001", fmt.Sprintf("Parameter check failed: job_id %s is not a number.", rawID))
		}
		job := j.job(id)
		if job == nil {
			return unknownJob(id)
		}
		return http.StatusOK, model.ShowFlinkJobResponse{IsSuccess: ptr("true"), Message: ptr(""), JobDetail: job}
	}
}

func (j *judge) listJobs(r received) (int, any) {
	query, err := url.ParseQuery(r.rawQuery)
	if err != nil {
		return http.StatusBadRequest, dliError("DLI.0001", "Parameter check failed: "+err.Error())
	}
	limit, err := number(query, "limit", defaultListLimit)
	if err != nil || limit < 0 || limit > maxListLimit {
		return http.StatusBadRequest, dliError("DLI.0001", fmt.Sprintf("Parameter check failed: limit must be between 0 and %d.", maxListLimit))
	}
	offset, err := number(query, "offset", 0)
	if err != nil || offset < 0 {
		return http.StatusBadRequest, dliError("DLI.0001", "Parameter check failed: offset must be a number of at least 0.")
	}
	page := []model.FlinkJob{}
	for i := offset; i < len(j.jobs) && len(page) < limit; i++ {
		page = append(page, j.jobs[i])
	}
	total := int64(len(j.jobs))
	return http.StatusOK, model.ListFlinkJobsResponse{
		IsSuccess: ptr("true"),
		Message:   ptr(""),
		JobList:   &model.FlinkJobList{TotalCount: &total, Jobs: &page},
	}
}

func (j *judge) job(id int64) *model.FlinkJob {
	for i := range j.jobs {
		if j.jobs[i].JobId == id {
			return &j.jobs[i]
		}
	}
	return nil
}

func unknownJob(id int64) (int, any) {
	return http.StatusBadRequest, dliError("DLI.16001", fmt.Sprintf("The job does not exist: %d", id))
}

// catalogue is the jobs the judge knows, with the fields real answers carry.
func catalogue(projectID string, now time.Time) []model.FlinkJob {
	created := now.Add(-48 * time.Hour).UnixMilli()
	job := func(id int64, name, status string, savepoint string) model.FlinkJob {
		return model.FlinkJob{
			JobId:         id,
			Name:          ptr(name),
			Desc:          ptr(""),
			UserName:      ptr("dli-operator"),
			JobType:       ptr(model.GetFlinkJobJobTypeEnum().FLINK_OPENSOURCE_SQL_JOB),
			Status:        ptr(status),
			StatusDesc:    ptr(""),
			CreateTime:    created,
			StartTime:     ptr(created + 1000),
			Duration:      ptr(int64(3_600_000)),
			RootId:        ptr(int64(-1)),
			UserId:        ptr("0d1e2f3a4b5c6d7e8f90a1b2c3d4e5f6"),
			ProjectId:     ptr(projectID),
			RunMode:       ptr("shared_cluster"),
			UpdateTime:    ptr(now.Add(-time.Minute).UnixMilli()),
			HasSavepoint:  ptr(savepoint != ""),
			QueueName:     ptr("flink-queue"),
			RestartTimes:  ptr(int64(0)),
			SavepointPath: ptr(savepoint),
			JobConfig: &model.FlinkJobConfig{
				CheckpointEnabled: ptr(true),
				CheckpointMode:    ptr(model.GetFlinkJobConfigCheckpointModeEnum().EXACTLY_ONCE),
				CuNumber:          ptr(int32(2)),
				ParallelNumber:    ptr(int32(1)),
			},
		}
	}
	return []model.FlinkJob{
		job(128, "orders-enrichment", "job_running", ""),
		job(137, "clickstream-sessions", "job_running", ""),
		job(256, "nightly-rollup", "job_cancel_success", fmt.Sprintf("obs://flink-bucket/jobs/savepoint/256/%d/", created)),
	}
}

func number(query url.Values, name string, fallback int) (int, error) {
	if !query.Has(name) {
		return fallback, nil
	}
	return strconv.Atoi(query.Get(name))
}

func dliError(code, message string) map[string]string {
	return map[string]string{"error_code": code, "error_msg": message}
}

func gatewayError(code, message, requestID string) map[string]string {
	return map[string]string{"error_code": code, "error_msg": message, "request_id": requestID}
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	encoded, err := json.Marshal(body)
	if err != nil {
		status = http.StatusInternalServerError
		encoded = []byte(`{"error_code":"DLI.0999","error_msg":"the judge cannot encode its answer"}`)
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write(encoded)
}

func newRequestID() string {
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	return hex.EncodeToString(id)
}

func ptr[T any](value T) *T {
	return &value
}
