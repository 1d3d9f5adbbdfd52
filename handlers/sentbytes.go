package handlers

import (
	"encoding/base64"
	"encoding/json"
)

// sentBytes recovers what the sender put in a message body from the value
// the host passed: base64 for dataType binary, else the string itself.
func sentBytes(raw json.RawMessage, dataType DataType) ([]byte, bool) {
	s, err := HostString(raw)
	if err != nil {
		return nil, false
	}
	if dataType == Binary {
		b, err := base64.StdEncoding.DecodeString(s)
		return b, err == nil
	}
	return []byte(s), true
}
