package graphemu

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/google/uuid"
)

// SharePoint HRESULTs the emulator reports (signed decimal, as in events).
const (
	codeCanceled     = "-2147213196" // 0x80042074 Operation canceled.
	codeFileExists   = "-2147024816" // 0x80070050
	codeNotFound     = "-2147024894" // 0x80070002
	codeInvalidArg   = "-2147024809" // 0x80070057
	codeBadData      = "-2147024883" // 0x8007000D
	errTypeSPExcept  = "Microsoft.SharePoint.SPException"
	errTypeMigration = "Microsoft.SharePoint.Migration.MigrationException"
)

// errFatal ends a job with a job-level fatal error.
type errFatal struct{ msg string }

func (e *errFatal) Error() string { return e.msg }

func fatalf(format string, a ...any) error { return &errFatal{fmt.Sprintf(format, a...)} }

func (s *Server) worker(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-s.queue:
			s.runJob(ctx, j)
		}
	}
}

// enqueue hands a job to the workers after its queue delay.
func (s *Server) enqueue(j *job) {
	if d := j.faults.QueueDelay; d > 0 {
		time.AfterFunc(d, func() { s.push(j) })
		return
	}
	s.push(j)
}

// push puts a job on the worker queue without ever blocking an HTTP
// handler or a timer: when the queue is full the send waits in its own
// goroutine (SharePoint gives no ordering guarantee either).
func (s *Server) push(j *job) {
	select {
	case s.queue <- j:
	default:
		go func() {
			select {
			case s.queue <- j:
			case <-s.done:
			}
		}()
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (j *job) stateIs(st jobState) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.state == st
}

// runJob takes a queued job through postponement, start, import and end.
func (s *Server) runJob(ctx context.Context, j *job) {
	// A postponement gives the worker back and re-queues the job later.
	j.mu.Lock()
	postpone := j.state == stateQueued && j.postponed < j.faults.Postpone
	if postpone {
		j.postponed++
	}
	n := j.postponed
	j.mu.Unlock()
	if postpone {
		s.emit(j, "sharePointMigrationJobPostponedEvent", map[string]any{
			"jobsInQueue":        int64(n),
			"nextPickupDateTime": s.cfg.Now().Add(j.faults.PostponeDelay).UTC().Format("2006-01-02T15:04:05.000Z"),
			"reason":             "Job postponed: the content database is busy (injected).",
			"totalRetryCount":    0,
		})
		time.AfterFunc(j.faults.PostponeDelay, func() { s.push(j) })
		return
	}
	jctx, cancel := context.WithCancel(ctx)
	defer cancel()
	j.mu.Lock()
	if j.state != stateQueued {
		j.mu.Unlock()
		return
	}
	j.state = stateProcessing
	j.cancel = cancel
	j.corr = uuid.NewString() // the processing phase has its own correlation id
	j.mu.Unlock()

	d := s.container(j.containerID)
	imp := &importer{s: s, j: j, d: d, started: time.Now(), lastProgress: time.Now()}
	imp.run(jctx, ctx)
}

// importer runs one job's import.
type importer struct {
	s *Server
	j *job
	d *drive

	tmp          string
	data, meta   *container.Client
	started      time.Time
	lastProgress time.Time

	// counters
	objects, expectedObjects int64
	files, filesCurrent      int64
	bytes, bytesCurrent      int64
	expectedBytes            int64
	errors, warnings         int64
	unsent                   int // object errors not sent as events (Knobs.UnsentErrorEvents)
	lastObject               string
	sinceProgress            int

	users      map[string]*pkgUser      // by User@Id
	pkgItems   map[string]string        // File/Folder Id → "file"/"folder"
	fileParent map[string]string        // File Id → ParentId
	fileInt    map[string]int           // File/Folder Id → ListItemIntId
	archives   map[string]archiveMember // FileValue → archive member

	// logs are the .log, .wrn and .err files (spec §7.5), kept on disk
	// until the job ends so memory does not grow with the package.
	logs [3]*logFile
}

type pkgUser struct {
	id, name, login, email, systemID string
	deleted                          bool
	resolved                         *person
}

// failObject reports whether the job's faults make a file of this name
// fail to import.
func (im *importer) failObject(name string) bool {
	for _, f := range im.j.faults.FailFiles {
		if strings.EqualFold(f, name) {
			return true
		}
	}
	return false
}

func (im *importer) retries() int {
	im.j.mu.Lock()
	defer im.j.mu.Unlock()
	return im.j.retries
}

func (im *importer) run(jctx, srvCtx context.Context) {
	s, j := im.s, im.j
	im.tmp = filepath.Join(s.cfg.DataDir, "jobs", j.id)
	defer os.RemoveAll(im.tmp)
	defer im.closeLogs()
	err := os.MkdirAll(im.tmp, 0o755)
	if err == nil {
		err = im.openLogs()
	}
	s.emit(j, "sharePointMigrationJobStartEvent", map[string]any{"isRestarted": false, "totalRetryCount": 0})
	im.logLine("Information", "", "", "", "Job started")
	if j.faults.Restart {
		j.mu.Lock()
		j.retries++
		r := j.retries
		j.mu.Unlock()
		im.logLine("Information", "", "", "", "Job restarted")
		s.emit(j, "sharePointMigrationJobStartEvent", map[string]any{"isRestarted": true, "totalRetryCount": r})
	}
	if err == nil && sleepCtx(jctx, j.faults.ProcessingDelay) {
		if j.faults.Fatal != "" {
			err = &errFatal{j.faults.Fatal}
		} else {
			err = im.importPackage(jctx)
		}
	}
	var fe *errFatal
	switch {
	case jctx.Err() != nil && srvCtx.Err() == nil:
		s.emit(j, "sharePointMigrationJobCancelledEvent", map[string]any{"isCancelledByUser": true, "totalRetryCount": im.retries()})
		im.event("fatalError", "invalid", "", "", codeCanceled, errTypeSPExcept, "Operation canceled.")
	case srvCtx.Err() != nil:
		return // the server is closing; the job is abandoned
	case errors.As(err, &fe):
		im.event("fatalError", "invalid", "", "", codeInvalidArg, errTypeMigration, fe.msg)
	case err != nil:
		im.event("fatalError", "invalid", "", "", codeInvalidArg, errTypeMigration, "Internal error: "+err.Error())
	}
	im.logLine("Information", "", "", "", "Job end")
	s.log.Info("migration job ended", "job", j.id, "container", j.containerID, "objects", im.objects,
		"files", im.files, "bytes", im.bytes, "errors", im.errors, "warnings", im.warnings, "cancelled", jctx.Err() != nil)
	logDelay := s.cfg.Knobs.LogDelay
	if logDelay <= 0 {
		im.writeLogs(srvCtx)
	}
	im.d.mu.Lock()
	if err := im.d.save(); err != nil {
		s.log.Warn("save drive", "container", im.d.c.ID, "err", err)
	}
	im.d.mu.Unlock()
	j.mu.Lock()
	j.state = stateFinished
	j.ended = s.cfg.Now()
	j.mu.Unlock()
	im.errors += s.cfg.Knobs.PhantomErrors
	im.progress(true)
	// SharePoint copies the logs when the job leaves its queue, which a
	// client may see after the final event.
	if logDelay > 0 && sleepCtx(srvCtx, logDelay) {
		im.writeLogs(srvCtx)
	}
}

func (im *importer) progress(done bool) {
	im.sinceProgress = 0
	im.lastProgress = time.Now()
	ev := map[string]any{
		"isCompleted":                      done,
		"filesProcessed":                   im.files,
		"filesProcessedOnlyCurrentVersion": im.filesCurrent,
		"bytesProcessed":                   im.bytes,
		"bytesProcessedOnlyCurrentVersion": im.bytesCurrent,
		"objectsProcessed":                 im.objects,
		"totalExpectedObjects":             im.expectedObjects,
		"totalExpectedBytes":               im.expectedBytes,
		"totalErrors":                      im.errors,
		"totalWarnings":                    im.warnings,
		"totalRetryCount":                  im.retries(),
		"totalDurationMs":                  time.Since(im.started).Milliseconds(),
		"cpuDurationMs":                    0,
		"sqlDurationMs":                    0,
		"sqlQueryCount":                    0,
		"waitTimeOnSqlThrottlingMs":        0,
	}
	if im.lastObject != "" {
		ev["lastProcessedObjectId"] = im.lastObject
	}
	im.s.emit(im.j, "sharePointMigrationJobProgressEvent", ev)
}

// processed counts an object and emits a progress event when due.
func (im *importer) processed(id string) {
	im.objects++
	im.lastObject = id
	im.sinceProgress++
	k := im.s.cfg.Knobs
	if im.sinceProgress >= k.ProgressEvery || time.Since(im.lastProgress) >= k.ProgressInterval {
		im.progress(false)
	}
}

// event emits an error event (any level) and logs it.
func (im *importer) event(level, objType, id, objURL, code, errType, msg string) {
	switch level {
	case "warning":
		im.warnings++
	case "error", "fatalError":
		im.errors++
	}
	ev := map[string]any{
		"errorLevel":      im.s.enum(level),
		"objectType":      im.s.enum(objType),
		"totalRetryCount": im.retries(),
		"error":           map[string]any{"code": code, "errorType": errType, "message": msg},
	}
	if id != "" {
		ev["objectId"] = id
	}
	if objURL != "" {
		ev["objectUrl"] = objURL
	}
	if level == "error" && im.unsent < im.s.cfg.Knobs.UnsentErrorEvents {
		// Counted and logged, but never sent as an event.
		im.unsent++
	} else {
		im.s.emit(im.j, "sharePointMigrationJobErrorEvent", ev)
	}
	lvl := map[string]string{"warning": "Warning", "error": "Error", "fatalError": "FatalError", "important": "Important"}[level]
	im.logLine(lvl, objType, id, objURL, msg)
}

func (im *importer) warn(objType, id, objURL, msg string) {
	im.event("warning", objType, id, objURL, codeInvalidArg, errTypeSPExcept, msg)
}

func (im *importer) objError(objType, id, objURL, code, msg string) {
	im.event("error", objType, id, objURL, code, errTypeSPExcept, msg)
}

// logFile is one import log being written.
type logFile struct {
	f *os.File
	w *bufio.Writer
}

var logExts = [3]string{".log", ".wrn", ".err"}

func (im *importer) openLogs() error {
	for i, ext := range logExts {
		f, err := os.Create(filepath.Join(im.tmp, "import"+ext))
		if err != nil {
			return err
		}
		im.logs[i] = &logFile{f: f, w: bufio.NewWriter(f)}
	}
	return nil
}

func (im *importer) logLine(level, objType, id, objURL, msg string) {
	if im.logs[0] == nil {
		return
	}
	line := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\n", im.s.cfg.Now().UTC().Format("2006-01-02T15:04:05.000Z"), level, objType, id, objURL, msg)
	_, _ = im.logs[0].w.WriteString(line)
	switch level {
	case "Warning":
		_, _ = im.logs[1].w.WriteString(line)
	case "Error", "FatalError":
		_, _ = im.logs[2].w.WriteString(line)
	}
}

// writeLogs uploads Import-{jobId}-{attempt}.log/.wrn/.err, encrypted with
// the job key, into the metadata container (spec §7.5).
func (im *importer) writeLogs(ctx context.Context) {
	meta := im.s.blob.ServiceClient().NewContainerClient(im.j.prov.meta)
	stem := fmt.Sprintf("Import-%s-%d", im.j.id, im.retries()+1)
	for i, lf := range im.logs {
		if lf == nil {
			continue
		}
		if err := im.uploadLog(ctx, meta, stem+logExts[i], lf); err != nil {
			im.s.log.Warn("write import log", "job", im.j.id, "log", stem+logExts[i], "err", err)
		}
	}
}

func (im *importer) closeLogs() {
	for _, lf := range im.logs {
		if lf != nil {
			lf.f.Close()
		}
	}
}

func (im *importer) uploadLog(ctx context.Context, meta *container.Client, name string, lf *logFile) error {
	if err := lf.w.Flush(); err != nil {
		return err
	}
	if _, err := lf.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	iv, err := newIV()
	if err != nil {
		return err
	}
	er, err := newEncryptReader(lf.f, im.j.key, iv)
	if err != nil {
		return err
	}
	ivs := b64(iv)
	_, err = meta.NewBlockBlobClient(name).UploadStream(ctx, er, &blockblob.UploadStreamOptions{Metadata: map[string]*string{"IV": &ivs}})
	return err
}

// openBlob downloads the latest snapshot of a blob (or the blob itself) and
// returns its decrypted stream. missing is true when the blob does not exist.
// A non-nil raw receives the ciphertext as it is read.
func (im *importer) openBlob(ctx context.Context, c *container.Client, name string, wantSnapshot bool, raw io.Writer) (rc io.ReadCloser, hasSnapshot, missing bool, err error) {
	bc := c.NewBlobClient(name)
	if wantSnapshot {
		snap := ""
		pager := c.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: &name, Include: container.ListBlobsInclude{Snapshots: true}})
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				return nil, false, false, fmt.Errorf("list %s: %w", name, err)
			}
			for _, it := range page.Segment.BlobItems {
				if it.Name != nil && *it.Name == name && it.Snapshot != nil && *it.Snapshot > snap {
					snap = *it.Snapshot
				}
			}
		}
		if snap != "" {
			hasSnapshot = true
			if bc, err = bc.WithSnapshot(snap); err != nil {
				return nil, false, false, err
			}
		}
	}
	resp, err := bc.DownloadStream(ctx, nil)
	if err != nil {
		if bloberror.HasCode(err, bloberror.BlobNotFound, bloberror.ContainerNotFound) {
			return nil, hasSnapshot, true, nil
		}
		return nil, hasSnapshot, false, fmt.Errorf("download %s: %w", name, err)
	}
	iv, err := ivFromMetadata(resp.Metadata)
	if err != nil {
		resp.Body.Close()
		return nil, hasSnapshot, false, &errFatal{err.Error()}
	}
	var body io.Reader = resp.Body
	if raw != nil {
		body = io.TeeReader(resp.Body, raw)
	}
	dr, err := newDecryptReader(body, im.j.key, iv)
	if err != nil {
		resp.Body.Close()
		return nil, hasSnapshot, false, err
	}
	return struct {
		io.Reader
		io.Closer
	}{dr, resp.Body}, hasSnapshot, false, nil
}

func versionLess(a, b string) bool {
	pa, pb := strings.SplitN(a, ".", 2), strings.SplitN(b, ".", 2)
	for i := 0; i < 2; i++ {
		var x, y int
		if i < len(pa) {
			x, _ = strconv.Atoi(pa[i])
		}
		if i < len(pb) {
			y, _ = strconv.Atoi(pb[i])
		}
		if x != y {
			return x < y
		}
	}
	return false
}

// normID is the map key of a package GUID: lower case, no braces.
func normID(id string) string { return strings.ToLower(strings.Trim(strings.TrimSpace(id), "{}")) }

func sameID(a, b string) bool {
	return strings.EqualFold(strings.Trim(strings.TrimSpace(a), "{}"), strings.Trim(strings.TrimSpace(b), "{}"))
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

func lastSeg(p string) string {
	p = strings.TrimSuffix(p, "/")
	return p[strings.LastIndex(p, "/")+1:]
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func isTrue(v string) bool { v = strings.TrimSpace(v); return v == "true" || v == "1" }

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
