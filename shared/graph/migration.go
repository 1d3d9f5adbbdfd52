package graph

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// ContainerInfo is what provisionMigrationContainers returns and what a
// migration job is created with (spec §3.1). All three fields are secrets:
// String and LogValue print only the container hosts and SAS expiry.
type ContainerInfo struct {
	DataContainerURI     string `json:"dataContainerUri"`
	MetadataContainerURI string `json:"metadataContainerUri"`
	EncryptionKey        string `json:"encryptionKey"` // base64 AES-256 key
}

// String never reveals the SAS or the key.
func (ci ContainerInfo) String() string {
	exp, err := ci.Expiry()
	if err != nil {
		return "ContainerInfo{<redacted>}"
	}
	return fmt.Sprintf("ContainerInfo{<redacted>, expires %s}", exp.UTC().Format(time.RFC3339))
}

// GoString keeps %#v from printing the secrets.
func (ci ContainerInfo) GoString() string { return ci.String() }

// LogValue implements slog.LogValuer so logging a ContainerInfo is safe.
func (ci ContainerInfo) LogValue() slog.Value { return slog.StringValue(ci.String()) }

// Expiry returns the earlier of the two SAS expiry times (the se= parameter),
// so callers can refuse to submit a job with less than 12 h left (spec §4).
func (ci ContainerInfo) Expiry() (time.Time, error) {
	var earliest time.Time
	for _, u := range []struct{ name, uri string }{{"dataContainerUri", ci.DataContainerURI}, {"metadataContainerUri", ci.MetadataContainerURI}} {
		t, err := sasExpiry(u.uri)
		if err != nil {
			return time.Time{}, fmt.Errorf("graph: %s: %w", u.name, err)
		}
		if earliest.IsZero() || t.Before(earliest) {
			earliest = t
		}
	}
	return earliest, nil
}

// Validate checks that all three values are present and well formed, without
// revealing them.
func (ci ContainerInfo) Validate() error {
	if ci.DataContainerURI == "" || ci.MetadataContainerURI == "" || ci.EncryptionKey == "" {
		return errors.New("graph: container info incomplete: dataContainerUri, metadataContainerUri and encryptionKey are all required")
	}
	if _, err := ci.Expiry(); err != nil {
		return err
	}
	return nil
}

func sasExpiry(raw string) (time.Time, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return time.Time{}, errors.New("not a URL")
	}
	se := u.Query().Get("se")
	if se == "" {
		return time.Time{}, errors.New("SAS has no expiry (se)")
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04Z", "2006-01-02"} {
		if t, err := time.Parse(layout, se); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errors.New("SAS expiry (se) is not a date")
}

// ProvisionContainers provisions a new pair of SharePoint-managed blob
// containers and a key for one migration job (spec §2.1). Each call returns
// fresh containers; they are never reused.
func (c *Client) ProvisionContainers(ctx context.Context, containerID string) (ContainerInfo, error) {
	if err := checkID("containerID", containerID); err != nil {
		return ContainerInfo{}, err
	}
	var out ContainerInfo
	if err := c.do(ctx, OpProvision, http.MethodPost, c.containerPath(containerID, "provisionMigrationContainers"), nil, &out); err != nil {
		return ContainerInfo{}, err
	}
	if out.DataContainerURI == "" || out.MetadataContainerURI == "" || out.EncryptionKey == "" {
		return ContainerInfo{}, errors.New("graph: provision migration containers: response lacks a container URI or the key")
	}
	return out, nil
}

// CreateJob creates a migration job over staged, encrypted containers
// (spec §2.2) and returns the job id. A 400 invalidAzureResource matches
// [ErrReprovisionNeeded].
//
// Creation is not idempotent, so this call is retried in-process only on
// 429/503 (the request was refused, not processed); a timeout or a 5xx is
// returned as is, and the caller decides.
func (c *Client) CreateJob(ctx context.Context, containerID string, info ContainerInfo) (jobID string, err error) {
	if err := checkID("containerID", containerID); err != nil {
		return "", err
	}
	if err := info.Validate(); err != nil {
		return "", err
	}
	ctx = policy.WithRetryOptions(ctx, c.createRetry)
	body := struct {
		ContainerInfo ContainerInfo `json:"containerInfo"`
	}{info}
	var out struct {
		ID string `json:"id"`
	}
	if err := c.do(ctx, OpCreateJob, http.MethodPost, c.containerPath(containerID, "migrationJobs"), body, &out); err != nil {
		return "", err
	}
	if out.ID == "" {
		return "", errors.New("graph: create migration job: response has no id")
	}
	return out.ID, nil
}

// DeleteJob removes a job that is still queued (spec §2.3). A finished or
// unknown job matches [ErrJobNotFound].
func (c *Client) DeleteJob(ctx context.Context, containerID, jobID string) error {
	if err := checkID("containerID", containerID); err != nil {
		return err
	}
	if err := checkID("jobID", jobID); err != nil {
		return err
	}
	return c.do(ctx, OpDeleteJob, http.MethodDelete, c.containerPath(containerID, "migrationJobs", url.PathEscape(jobID)), nil, nil)
}

func checkID(name, v string) error {
	if v == "" {
		return fmt.Errorf("graph: %s is empty", name)
	}
	return nil
}
