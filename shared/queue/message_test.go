package queue

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	for _, m := range []Message{
		Provision("m1", 0),
		Provision("m1", 3),
		StageBatch("m1", "000001", 1),
		Submit("m1", "000001", 2),
		Poll("m1", "000001", 2, 7),
		{V: 1, Step: StepPoll, MigrationID: "m1", BatchID: "b", Attempt: 1, Seq: 0, Nonce: "redrive-1"},
	} {
		body, err := m.Encode()
		if err != nil {
			t.Fatalf("encode %+v: %v", m, err)
		}
		got, err := Decode(body)
		if err != nil {
			t.Fatalf("decode %s: %v", body, err)
		}
		if got != m {
			t.Errorf("round trip %s: got %+v, want %+v", body, got, m)
		}
		if !IsStepMessage(body) {
			t.Errorf("%s not recognised as a step message", body)
		}
	}
}

func TestWireFormat(t *testing.T) {
	body, err := Poll("m1", "000002", 1, 4).Encode()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"v":1,"step":"poll","migrationId":"m1","batchId":"000002","attempt":1,"seq":4}`
	if string(body) != want {
		t.Errorf("body = %s\nwant   %s", body, want)
	}
}

func TestDecodeErrorsNameTheProblem(t *testing.T) {
	cases := map[string]string{
		``:                                  "empty",
		`[{"v":1}]`:                         "not a JSON object",
		`{"v":1,`:                           "not valid JSON",
		`{"step":"poll","migrationId":"m"}`: `no version ("v")`,
		`{"v":2,"step":"poll","migrationId":"m"}`:                             "version 2 is not supported",
		`{"v":1,"migrationId":"m"}`:                                           "step is missing",
		`{"v":1,"step":"dance","migrationId":"m"}`:                            `step "dance" is unknown`,
		`{"v":1,"step":"provision"}`:                                          "migrationId: is missing",
		`{"v":1,"step":"submit","migrationId":"m","attempt":1}`:               "batchId: is missing",
		`{"v":1,"step":"poll","migrationId":"m","batchId":"b"}`:               "attempt: is missing",
		`{"v":1,"step":"poll","migrationId":"m","batchId":"b","attempt":"1"}`: "attempt: expected int",
	}
	for body, want := range cases {
		_, err := Decode([]byte(body))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Decode(%s) = %v, want an error containing %q", body, err, want)
		}
	}
}

func TestUnknownFieldsTolerated(t *testing.T) {
	m, err := Decode([]byte(`{"v":1,"step":"stage-batch","migrationId":"m","batchId":"b","attempt":1,"future":{"x":1}}`))
	if err != nil || m.BatchID != "b" {
		t.Fatalf("%+v %v", m, err)
	}
}

func TestMessageIDDeterministicAndDistinct(t *testing.T) {
	ids := map[string]Message{}
	for _, m := range []Message{
		Provision("m1", 0), Provision("m1", 1), Provision("m2", 0),
		StageBatch("m1", "b1", 1), StageBatch("m1", "b1", 2), StageBatch("m1", "b2", 1),
		Submit("m1", "b1", 1), Poll("m1", "b1", 1, 0), Poll("m1", "b1", 1, 1), Poll("m1", "b1", 2, 1),
		{V: 1, Step: StepPoll, MigrationID: "m1", BatchID: "b1", Attempt: 1, Seq: 1, Nonce: "n"},
	} {
		id := m.MessageID()
		if prev, dup := ids[id]; dup {
			t.Errorf("%+v and %+v share MessageId %q", prev, m, id)
		}
		ids[id] = m
		if id != m.MessageID() {
			t.Errorf("MessageId of %+v is not deterministic", m)
		}
	}
	long := Poll(strings.Repeat("m", 100), strings.Repeat("b", 100), 1, 1)
	if id := long.MessageID(); len(id) > maxMessageID {
		t.Errorf("MessageId is %d chars, over the Service Bus limit", len(id))
	}
}

func TestIsStepMessageTellsRequestsApart(t *testing.T) {
	req, _ := json.Marshal(map[string]any{"v": 1, "source": map[string]any{"kind": "local"}, "target": map[string]any{}})
	if IsStepMessage(req) {
		t.Error("a migration request was taken for a step message")
	}
}

func TestQueuesDefaults(t *testing.T) {
	q := Queues{Poll: "custom-poll"}.withDefaults()
	for step, want := range map[Step]string{StepProvision: "provision", StepStageBatch: "stage-batch", StepSubmit: "submit", StepPoll: "custom-poll"} {
		if got, err := q.For(step); err != nil || got != want {
			t.Errorf("queue for %s = %q, %v", step, got, err)
		}
	}
}
