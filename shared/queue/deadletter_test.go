package queue

import (
	"context"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
)

func TestServiceBusDeadLetters(t *testing.T) {
	if sbConn == "" {
		t.Skip("needs the Service Bus emulator (not started with -short)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client, err := azservicebus.NewClientFromConnectionString(sbConn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close(ctx)
	dls := &ServiceBusDeadLetters{Client: client}
	defer dls.Close(ctx)

	// An empty dead-letter queue answers at once (peek), without waiting.
	start := time.Now()
	got, err := dls.Receive(ctx, "submit", 10)
	if err != nil || len(got) != 0 {
		t.Fatalf("empty Receive = %v, %v", got, err)
	}
	if d := time.Since(start); d > receiveWait {
		t.Errorf("empty Receive took %v", d)
	}

	// Dead-letter one message the way the broker does, with a reason.
	snd, err := client.NewSender("submit", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer snd.Close(ctx)
	body := []byte(`{"v":1,"step":"submit","migrationId":"m1","batchId":"b1","attempt":1}`)
	if err := snd.SendMessage(ctx, &azservicebus.Message{Body: body, MessageID: to.Ptr("submit/m1/b1/a1")}, nil); err != nil {
		t.Fatal(err)
	}
	rcv, err := client.NewReceiverForQueue("submit", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rcv.Close(ctx)
	msgs, err := rcv.ReceiveMessages(ctx, 1, nil)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("receive: %v %d", err, len(msgs))
	}
	if err := rcv.DeadLetterMessage(ctx, msgs[0], &azservicebus.DeadLetterOptions{
		Reason: to.Ptr("MaxDeliveryCountExceeded"), ErrorDescription: to.Ptr("Message could not be consumed after 10 delivery attempts."),
	}); err != nil {
		t.Fatal(err)
	}

	got, err = dls.Receive(ctx, "submit", 10)
	if err != nil || len(got) != 1 {
		t.Fatalf("Receive = %+v, %v", got, err)
	}
	dl := got[0]
	if dl.Queue != "submit" || string(dl.Body) != string(body) || dl.MessageID != "submit/m1/b1/a1" ||
		dl.Reason != "MaxDeliveryCountExceeded" || dl.Description == "" {
		t.Errorf("dead letter = %+v", dl)
	}
	if r := dl.FailureReason(); r != "message dead-lettered on queue submit: MaxDeliveryCountExceeded: Message could not be consumed after 10 delivery attempts." {
		t.Errorf("Reason = %q", r)
	}
	if err := dls.Complete(ctx, dl); err != nil {
		t.Fatal(err)
	}
	// Completed: gone for good.
	if got, err := dls.Receive(ctx, "submit", 10); err != nil || len(got) != 0 {
		t.Errorf("after Complete: %+v, %v", got, err)
	}
	if err := dls.Complete(ctx, DeadLetter{Queue: "submit"}); err == nil {
		t.Error("Complete of a dead letter this reader did not receive succeeded")
	}
}
