package graphemu

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
)

// provisioning remembers one provisionMigrationContainers answer.
type provisioning struct {
	containerID string // SPE container
	data, meta  string // blob container names
	dataSAS     string // full URLs with SAS
	metaSAS     string
	key         []byte
	expiry      time.Time
	jobs        int
}

func (s *Server) handleProvision(w http.ResponseWriter, r *http.Request, cid string) {
	d := s.container(cid)
	if d == nil {
		containerNotFound(w, r, cid)
		return
	}
	p := &provisioning{containerID: d.c.ID, expiry: s.cfg.Now().Add(s.cfg.Knobs.SASLifetime).UTC()}
	p.key = make([]byte, 32)
	if _, err := rand.Read(p.key); err != nil {
		writeError(w, r, http.StatusInternalServerError, "generalException", "", "key generation failed")
		return
	}
	for _, name := range []*string{&p.data, &p.meta} {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		*name = hex.EncodeToString(b)
		if _, err := s.blob.CreateContainer(r.Context(), *name, nil); err != nil {
			s.log.Error("provision: create container", "err", err)
			writeError(w, r, http.StatusServiceUnavailable, "serviceNotAvailable", "", "Could not create the migration containers; retry.")
			return
		}
	}
	var err error
	if p.dataSAS, err = s.containerSAS(p.data, p.expiry); err == nil {
		p.metaSAS, err = s.containerSAS(p.meta, p.expiry)
	}
	if err != nil {
		writeError(w, r, http.StatusInternalServerError, "generalException", "", "SAS signing failed")
		return
	}
	s.mu.Lock()
	s.provs[p.data] = p
	s.provs[p.meta] = p
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"@odata.context":       "https://graph.microsoft.com/" + graphVersion(r) + "/$metadata#microsoft.graph.sharePointMigrationContainerInfo",
		"@odata.type":          "#microsoft.graph.sharePointMigrationContainerInfo",
		"dataContainerUri":     p.dataSAS,
		"metadataContainerUri": p.metaSAS,
		"encryptionKey":        base64.StdEncoding.EncodeToString(p.key),
	})
}

// containerSAS signs a read+write (no list) SAS for a container.
func (s *Server) containerSAS(name string, expiry time.Time) (string, error) {
	qp, err := sas.BlobSignatureValues{
		Protocol:      sas.Protocol(s.cfg.Knobs.SASProtocol),
		StartTime:     s.cfg.Now().Add(-5 * time.Minute).UTC(),
		ExpiryTime:    expiry,
		Permissions:   (&sas.ContainerPermissions{Read: true, Write: true}).String(),
		ContainerName: name,
	}.SignWithSharedKey(s.cred)
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(s.cfg.Storage.BlobEndpoint, "/") + "/" + name + "?" + qp.Encode(), nil
}

// checkContainerURI checks one containerInfo URI against what this emulator
// issued for the SPE container, and returns the provisioning.
func (s *Server) checkContainerURI(field, raw, containerID string) (*provisioning, string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil, "", fmt.Errorf("containerInfo.%s is not an absolute URL", field)
	}
	name := u.Path[strings.LastIndex(strings.TrimSuffix(u.Path, "/"), "/")+1:]
	name = strings.TrimSuffix(name, "/")
	s.mu.Lock()
	p := s.provs[name]
	s.mu.Unlock()
	if p == nil || !strings.EqualFold(p.containerID, containerID) {
		return nil, "", fmt.Errorf("containerInfo.%s does not name a container provisioned for this SPE container", field)
	}
	issued, _ := url.Parse(map[bool]string{true: p.dataSAS, false: p.metaSAS}[name == p.data])
	if u.Query().Get("sig") == "" || u.Query().Get("sig") != issued.Query().Get("sig") {
		return nil, "", fmt.Errorf("containerInfo.%s carries a SAS signature that was not issued", field)
	}
	now := s.cfg.Now()
	if !now.Before(p.expiry) {
		return nil, "", fmt.Errorf("containerInfo.%s SAS expired at %s", field, p.expiry.Format(time.RFC3339))
	}
	if m := s.cfg.Knobs.MinSASRemaining; m > 0 && p.expiry.Sub(now) < m {
		return nil, "", fmt.Errorf("containerInfo.%s SAS has less than %s left", field, m)
	}
	return p, name, nil
}
