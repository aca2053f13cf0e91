package main

// The Lua sandbox Argo CD runs a custom health check in, rebuilt from Argo CD v3.6.1:
// util/lua/lua.go (VM.runLuaWithResourceActionParameters, ExecuteHealthLua, decodeValue,
// isValidHealthStatusCode), util/lua/oslib_safe.go and gitops-engine pkg/health/health.go
// (GetResourceHealth, pendingDeletionHealth). Importing those packages is impractical: Argo CD
// v3.6.1 needs Go 1.27, replaces its gitops-engine with a local directory, and drags its whole
// API server into the build. The interpreter and the JSON codec are the ones Argo CD v3.6.1
// pins (go.mod: github.com/yuin/gopher-lua v1.1.2, layeh.com/gopher-json
// v0.0.0-20190114024228-97fed8db8427), so the language, the libraries and the conversions
// are Argo CD's own.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	luajson "layeh.com/gopher-json"
)

// Argo CD's health codes (gitops-engine pkg/health).
const (
	healthUnknown     = "Unknown"
	healthProgressing = "Progressing"
	healthHealthy     = "Healthy"
	healthSuspended   = "Suspended"
	healthDegraded    = "Degraded"
	healthMissing     = "Missing"
)

// The message Argo CD shows when a script returns a status outside its codes.
const invalidHealthStatus = "Lua returned an invalid health status"

// The finalizer Argo CD puts on its hooks; a terminating object with it keeps its own health.
const hookFinalizer = "argocd.argoproj.io/hook-finalizer"

// Argo CD gives a health script this long before cancelling it.
const scriptTimeout = time.Second

// healthStatus is gitops-engine's HealthStatus: the JSON shape a script's table must decode into.
type healthStatus struct {
	Status          string `json:"status,omitempty"`
	Message         string `json:"message,omitempty"`
	DeletionMessage string `json:"deletionMessage,omitempty"`
}

// resourceHealth is what Argo CD shows for obj when argocd-cm holds script for its kind
// (without useOpenLibs): a script error becomes Unknown with the error as the message. A nil
// result means the script returned nothing and Argo CD falls back to its built-in checks.
func resourceHealth(obj *unstructured.Unstructured, script string) *healthStatus {
	health, err := executeHealthLua(obj, script)
	if err != nil {
		return &healthStatus{Status: healthUnknown, Message: err.Error()}
	}
	if health == nil {
		return nil
	}
	if deleting := pendingDeletionHealth(obj, health); deleting != nil {
		return deleting
	}
	return health
}

func executeHealthLua(obj *unstructured.Unstructured, script string) (*healthStatus, error) {
	l, err := runLua(obj, script)
	if err != nil {
		return nil, err
	}
	returned := l.Get(-1)
	switch returned.Type() {
	case lua.LTTable:
		encoded, err := luajson.Encode(returned)
		if err != nil {
			return nil, err
		}
		health := &healthStatus{}
		if err := json.Unmarshal(encoded, health); err != nil {
			// An empty table encodes as [], which Argo CD takes as an empty health.
			typeError := &json.UnmarshalTypeError{Value: "array", Type: reflect.TypeFor[*healthStatus]()}
			if errors.As(err, &typeError) {
				return &healthStatus{}, nil
			}
			return nil, err
		}
		if !isValidHealthStatusCode(health.Status) {
			return &healthStatus{Status: healthUnknown, Message: invalidHealthStatus}, nil
		}
		return health, nil
	case lua.LTNil:
		return nil, nil
	default:
		return nil, fmt.Errorf("expect table output from Lua script, not %s", returned.Type().String())
	}
}

// runLua runs script with only the package, base and table libraries and Argo CD's "safe
// os" open, the object as the global obj, and a one-second deadline.
func runLua(obj *unstructured.Unstructured, script string) (*lua.LState, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, library := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.OsLibName, openSafeOs},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(library.open), NRet: 0, Protect: true}, lua.LString(library.name)); err != nil {
			return nil, fmt.Errorf("opening the %s library: %w", library.name, err)
		}
	}
	l.PreloadModule(lua.OsLibName, safeOsLoader)

	ctx, cancel := context.WithTimeout(context.Background(), scriptTimeout)
	defer cancel()
	l.SetContext(ctx)
	// Argo CD also sets actionParams (empty for health checks).
	l.SetGlobal("actionParams", l.CreateTable(0, 0))
	l.SetGlobal("obj", decodeValue(l, obj.Object))

	fn, err := l.LoadString(script)
	if err == nil {
		l.Push(fn)
		err = l.PCall(0, lua.MultRet, nil)
	}
	// Argo CD drops the Lua stack trace from run errors: users see the message only.
	var apiErr *lua.ApiError
	if errors.As(err, &apiErr) && apiErr.Type == lua.ApiErrorRun {
		apiErr.StackTrace = ""
		err = apiErr
	}
	return l, err
}

func isValidHealthStatusCode(status string) bool {
	switch status {
	case healthUnknown, healthProgressing, healthSuspended, healthHealthy, healthDegraded, healthMissing:
		return true
	}
	return false
}

// decodeValue turns the object Argo CD holds (decoded JSON, whole numbers as int64) into
// Lua values: JSON null becomes nil, every number a Lua number.
func decodeValue(l *lua.LState, value any) lua.LValue {
	switch converted := value.(type) {
	case bool:
		return lua.LBool(converted)
	case float64:
		return lua.LNumber(converted)
	case string:
		return lua.LString(converted)
	case json.Number:
		return lua.LString(converted)
	case int:
		return lua.LNumber(converted)
	case int32:
		return lua.LNumber(converted)
	case int64:
		return lua.LNumber(converted)
	case []any:
		array := l.CreateTable(len(converted), 0)
		for _, item := range converted {
			array.Append(decodeValue(l, item))
		}
		return array
	case map[string]any:
		table := l.CreateTable(0, len(converted))
		for key, item := range converted {
			table.RawSetH(lua.LString(key), decodeValue(l, item))
		}
		return table
	}
	return lua.LNil
}

// pendingDeletionHealth is what Argo CD shows for a terminating object that is not one of its
// hooks: the script's deletionMessage if it set one, else Progressing "Pending deletion".
func pendingDeletionHealth(obj *unstructured.Unstructured, health *healthStatus) *healthStatus {
	if obj.GetDeletionTimestamp() == nil {
		return nil
	}
	for _, finalizer := range obj.GetFinalizers() {
		if finalizer == hookFinalizer {
			return nil
		}
	}
	if health.DeletionMessage != "" {
		return &healthStatus{Status: health.Status, Message: health.DeletionMessage}
	}
	message := "Pending deletion"
	if finalizers := obj.GetFinalizers(); len(finalizers) > 0 {
		message = "Pending deletion; blocked by finalizers: " + strings.Join(finalizers, ", ")
	}
	return &healthStatus{Status: healthProgressing, Message: message}
}
