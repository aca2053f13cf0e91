package sdkdli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"

	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/sdkerr"
)

// Mismatches compares an answer body with the SDK model it was read into, re-marshalled: every
// field of the answer must come back with the same value, and the model must hold nothing the
// answer did not send. An answer's null equals an absent field (the SDK's optional fields are
// pointers, left nil either way); a required (non-pointer) field that is missing or null shows
// up as a zero value the SDK made up. Empty means nothing was lost or invented.
func Mismatches(answer []byte, sdkModel any) []string {
	sent, err := decode(answer)
	if err != nil {
		return []string{fmt.Sprintf("the answer is not JSON: %v", err)}
	}
	marshalled, err := json.Marshal(sdkModel)
	if err != nil {
		return []string{fmt.Sprintf("the SDK's model does not marshal: %v", err)}
	}
	held, err := decode(marshalled)
	if err != nil {
		return []string{fmt.Sprintf("the SDK's model marshals to invalid JSON: %v", err)}
	}
	var found []string
	compare("$", withoutNulls(sent), held, &found)
	return found
}

// ErrorMismatches compares an error answer with the SDK's ServiceResponseError: the code and
// message must be the body's, and a request_id in the body must be the one the SDK reports
// (which it takes from the X-Request-Id header).
func ErrorMismatches(answer []byte, sdkError *sdkerr.ServiceResponseError) []string {
	var body struct {
		ErrorCode string `json:"error_code"`
		ErrorMsg  string `json:"error_msg"`
		RequestID string `json:"request_id"`
	}
	if err := json.Unmarshal(answer, &body); err != nil {
		return []string{fmt.Sprintf("the error answer is not a JSON object: %v", err)}
	}
	var found []string
	if body.ErrorCode != sdkError.ErrorCode {
		found = append(found, fmt.Sprintf("error_code: the answer has %q, the SDK reports %q", body.ErrorCode, sdkError.ErrorCode))
	}
	if body.ErrorMsg != sdkError.ErrorMessage {
		found = append(found, fmt.Sprintf("error_msg: the answer has %q, the SDK reports %q", body.ErrorMsg, sdkError.ErrorMessage))
	}
	if body.RequestID != "" && body.RequestID != sdkError.RequestId {
		found = append(found, fmt.Sprintf("request_id: the answer has %q, the SDK reports %q (from X-Request-Id)", body.RequestID, sdkError.RequestId))
	}
	return found
}

func decode(data []byte) (any, error) {
	decoder := json.NewDecoder(bytes.NewReader(data))
	decoder.UseNumber()
	var value any
	err := decoder.Decode(&value)
	return value, err
}

func withoutNulls(value any) any {
	switch value := value.(type) {
	case map[string]any:
		kept := make(map[string]any, len(value))
		for key, field := range value {
			if field != nil {
				kept[key] = withoutNulls(field)
			}
		}
		return kept
	case []any:
		items := make([]any, len(value))
		for i, item := range value {
			items[i] = withoutNulls(item)
		}
		return items
	default:
		return value
	}
}

func compare(path string, sent, held any, found *[]string) {
	switch sent := sent.(type) {
	case map[string]any:
		heldObject, ok := held.(map[string]any)
		if !ok {
			*found = append(*found, fmt.Sprintf("%s: an object in the answer, %s in the SDK's model", path, describe(held)))
			return
		}
		for _, key := range sortedKeys(sent) {
			heldField, ok := heldObject[key]
			if !ok {
				*found = append(*found, fmt.Sprintf("%s.%s: in the answer (%s), lost by the SDK's model", path, key, describe(sent[key])))
				continue
			}
			compare(path+"."+key, sent[key], heldField, found)
		}
		for _, key := range sortedKeys(heldObject) {
			if _, ok := sent[key]; !ok {
				*found = append(*found, fmt.Sprintf("%s.%s: missing or null in the answer, the SDK's model holds %s", path, key, describe(heldObject[key])))
			}
		}
	case []any:
		heldArray, ok := held.([]any)
		if !ok || len(heldArray) != len(sent) {
			*found = append(*found, fmt.Sprintf("%s: an array of %d in the answer, %s in the SDK's model", path, len(sent), describe(held)))
			return
		}
		for i := range sent {
			compare(fmt.Sprintf("%s[%d]", path, i), sent[i], heldArray[i], found)
		}
	default:
		if !reflect.DeepEqual(sent, held) {
			*found = append(*found, fmt.Sprintf("%s: the answer has %s, the SDK's model holds %s", path, describe(sent), describe(held)))
		}
	}
}

func sortedKeys(object map[string]any) []string {
	keys := make([]string, 0, len(object))
	for key := range object {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	return keys
}

func describe(value any) string {
	switch value := value.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return fmt.Sprintf("an array of %d", len(value))
	default:
		text, _ := json.Marshal(value)
		return string(text)
	}
}
