package graphemu

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sort"
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
	lastObject               string
	sinceProgress            int

	users      map[string]*pkgUser      // by User@Id
	pkgItems   map[string]string        // File/Folder Id → "file"/"folder"
	fileParent map[string]string        // File Id → ParentId
	fileInt    map[string]int           // File/Folder Id → ListItemIntId
	archives   map[string]archiveMember // FileValue → archive member

	log, wrn, errLog bytes.Buffer
}

type pkgUser struct {
	id, name, login, email, systemID string
	deleted                          bool
	resolved                         *person
	warned                           bool
}

func (im *importer) retries() int {
	im.j.mu.Lock()
	defer im.j.mu.Unlock()
	return im.j.retries
}

func (im *importer) run(jctx, srvCtx context.Context) {
	s, j := im.s, im.j
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
	im.tmp = filepath.Join(s.cfg.DataDir, "jobs", j.id)
	defer os.RemoveAll(im.tmp)
	err := os.MkdirAll(im.tmp, 0o755)
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
	im.writeLogs(srvCtx)
	j.mu.Lock()
	j.state = stateFinished
	j.ended = s.cfg.Now()
	j.mu.Unlock()
	im.progress(true)
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
	im.s.emit(im.j, "sharePointMigrationJobErrorEvent", ev)
	lvl := map[string]string{"warning": "Warning", "error": "Error", "fatalError": "FatalError", "important": "Important"}[level]
	im.logLine(lvl, objType, id, objURL, msg)
}

func (im *importer) warn(objType, id, objURL, msg string) {
	im.event("warning", objType, id, objURL, codeInvalidArg, errTypeSPExcept, msg)
}

func (im *importer) objError(objType, id, objURL, code, msg string) {
	im.event("error", objType, id, objURL, code, errTypeSPExcept, msg)
}

func (im *importer) logLine(level, objType, id, objURL, msg string) {
	line := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\n", im.s.cfg.Now().UTC().Format("2006-01-02T15:04:05.000Z"), level, objType, id, objURL, msg)
	im.log.WriteString(line)
	switch level {
	case "Warning":
		im.wrn.WriteString(line)
	case "Error", "FatalError":
		im.errLog.WriteString(line)
	}
}

// writeLogs uploads Import-{jobId}-{attempt}.log/.wrn/.err, encrypted with
// the job key, into the metadata container (spec §7.5).
func (im *importer) writeLogs(ctx context.Context) {
	meta := im.s.blob.ServiceClient().NewContainerClient(im.j.prov.meta)
	stem := fmt.Sprintf("Import-%s-%d", im.j.id, im.retries()+1)
	for ext, buf := range map[string]*bytes.Buffer{".log": &im.log, ".wrn": &im.wrn, ".err": &im.errLog} {
		ct, iv, err := encrypt(im.j.key, buf.Bytes())
		if err != nil {
			continue
		}
		ivs := b64(iv)
		_, err = meta.NewBlockBlobClient(stem+ext).UploadBuffer(ctx, ct, &blockblob.UploadBufferOptions{Metadata: map[string]*string{"IV": &ivs}})
		if err != nil {
			im.s.log.Warn("write import log", "job", im.j.id, "err", err)
		}
	}
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

// fetchManifest decrypts a metadata blob into a temporary file. It returns
// "" when the blob does not exist.
func (im *importer) fetchManifest(ctx context.Context, name string) (string, error) {
	rc, _, missing, err := im.openBlob(ctx, im.meta, name, false, nil)
	if missing {
		return "", nil
	}
	var fe *errFatal
	if errors.As(err, &fe) {
		return "", fatalf("Cannot decrypt %s: %s", name, fe.msg)
	}
	if err != nil {
		return "", err
	}
	defer rc.Close()
	p := filepath.Join(im.tmp, "m-"+url.PathEscape(name))
	f, err := os.Create(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, err := io.Copy(f, rc); err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", fatalf("Cannot decrypt %s: %v", name, err)
	}
	return p, nil
}

func readDocFile(path string, sd *schemaDoc) (*node, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	n, err := readDoc(f, sd)
	var se *schemaError
	if errors.As(err, &se) {
		return nil, fatalf("Manifest validation failed: %s", se)
	}
	if err != nil {
		return nil, fatalf("Manifest validation failed: %s: %v", sd.file, err)
	}
	return n, nil
}

var sourceTypes = []string{"AmazonS3", "AzureStorage", "Box", "Dropbox", "Egnyte", "FileShare", "GoogleCloudStorage", "GoogleDrive", "MicrosoftStream", "OneDrive", "SharePointOnline", "SharePointOnPremServer", "Other"}

// importPackage is §9.4 steps 2–7.
func (im *importer) importPackage(ctx context.Context) error {
	svc := im.s.blob.ServiceClient()
	im.data = svc.NewContainerClient(im.j.prov.data)
	im.meta = svc.NewContainerClient(im.j.prov.meta)
	k := im.s.cfg.Knobs

	// Required and optional small manifests.
	paths := map[string]string{}
	for _, name := range []string{"ExportSettings.xml", "SystemData.xml", "UserGroup.xml", "RootObjectMap.xml", "LookupListMap.xml", "Requirements.xml", "ViewFormsList.xml"} {
		p, err := im.fetchManifest(ctx, name)
		if err != nil {
			return err
		}
		paths[name] = p
	}
	if paths["UserGroup.xml"] == "" {
		p, err := im.fetchManifest(ctx, "UserGroupMap.xml")
		if err != nil {
			return err
		}
		if p != "" {
			im.warn("invalid", "", "", "UserGroupMap.xml was used as the user map; name it UserGroup.xml")
		}
		paths["UserGroup.xml"] = p
	}
	for _, req := range []string{"ExportSettings.xml", "SystemData.xml", "UserGroup.xml"} {
		if paths[req] == "" {
			return fatalf("Required file %s is missing from the metadata container", req)
		}
	}
	if paths["RootObjectMap.xml"] == "" {
		if k.MissingRootObjectMap == "fatal" {
			return fatalf("Required file RootObjectMap.xml is missing from the metadata container")
		}
		im.warn("invalid", "", "", "RootObjectMap.xml is missing from the metadata container")
	}

	// ExportSettings.
	es, err := readDocFile(paths["ExportSettings.xml"], exportSettingsSchema)
	if err != nil {
		return err
	}
	if es.attr("SiteUrl") == "" {
		return fatalf("ExportSettings.xml: the SiteUrl attribute is required")
	}
	if st := es.attr("SourceType"); st == "" {
		if k.MissingSourceType == "fatal" {
			return fatalf("ExportSettings.xml: the SourceType attribute is required (one of %s)", strings.Join(sourceTypes, ", "))
		}
		im.warn("invalid", "", "", "ExportSettings.xml: the SourceType attribute is missing")
	} else if !contains(sourceTypes, st) {
		return fatalf("ExportSettings.xml: SourceType '%s' is not one of %s", st, strings.Join(sourceTypes, ", "))
	}

	// SystemData.
	sd, err := readDocFile(paths["SystemData.xml"], systemDataSchema)
	if err != nil {
		return err
	}
	if sv := sd.kid("SchemaVersion"); sv == nil || sv.attr("Version") != "15.0.0.0" || sv.attr("SiteVersion") != "15" {
		im.warn("invalid", "", "", "SystemData.xml: SchemaVersion should have Version=\"15.0.0.0\" and SiteVersion=\"15\"")
	}
	var manifests []string
	if mf := sd.kid("ManifestFiles"); mf != nil {
		for _, m := range mf.kids {
			if m.attr("Name") != "" {
				manifests = append(manifests, m.attr("Name"))
			}
		}
	}
	if len(manifests) == 0 {
		return fatalf("SystemData.xml lists no ManifestFile")
	}

	// RootObjectMap.
	if p := paths["RootObjectMap.xml"]; p != "" {
		ro, err := readDocFile(p, rootObjectMapSchema)
		if err != nil {
			return err
		}
		for _, o := range ro.kids {
			if o.attr("Type") == "List" && (!sameID(o.attr("Id"), im.d.c.ListID) || !sameID(o.attr("ParentId"), im.d.c.WebID)) {
				return fatalf("RootObjectMap.xml: the List root object must have Id %s and ParentId %s (got %s, %s)", im.d.c.ListID, im.d.c.WebID, o.attr("Id"), o.attr("ParentId"))
			}
		}
	}

	// Optional childless maps.
	for _, o := range []struct {
		name string
		sd   *schemaDoc
	}{{"LookupListMap.xml", lookupListMapSchema}, {"Requirements.xml", requirementsSchema}, {"ViewFormsList.xml", viewFormsListSchema}} {
		p := paths[o.name]
		if p == "" {
			im.warn("invalid", "", "", o.name+" is missing from the metadata container")
			continue
		}
		if o.name == "LookupListMap.xml" {
			if n, err := readDocFile(p, &schemaDoc{file: o.name, root: "LookupListMap", ns: "", elems: map[string]*elemSpec{"LookupListMap": lax(true)}}); err == nil && n != nil {
				im.warn("invalid", "", "", "LookupListMap.xml uses the undocumented un-namespaced <LookupListMap> root")
				continue
			}
		}
		if _, err := readDocFile(p, o.sd); err != nil {
			return err
		}
	}

	// Users.
	ug, err := readDocFile(paths["UserGroup.xml"], userGroupSchema)
	if err != nil {
		return err
	}
	im.users = map[string]*pkgUser{}
	logins := map[string]bool{}
	if us := ug.kid("Users"); us != nil {
		for _, u := range us.kids {
			pu := &pkgUser{id: strings.TrimSpace(u.attr("Id")), name: u.attr("Name"), login: u.attr("Login"), email: u.attr("Email"),
				systemID: u.attr("SystemId"), deleted: isTrue(u.attr("IsDeleted"))}
			if im.users[pu.id] != nil {
				return fatalf("UserGroup.xml: duplicate user Id %s (each user must be declared once)", pu.id)
			}
			if l := strings.ToLower(pu.login); l != "" {
				if logins[l] {
					return fatalf("UserGroup.xml: duplicate user Login '%s' (each user must be declared once)", pu.login)
				}
				logins[l] = true
			}
			im.users[pu.id] = pu
		}
	}

	// Manifests, pass 1: schema, semantics, counts, ids.
	mpaths := make([]string, len(manifests))
	for i, name := range manifests {
		p, err := im.fetchManifest(ctx, name)
		if err != nil {
			return err
		}
		if p == "" {
			return fatalf("Manifest file %s listed in SystemData.xml is missing from the metadata container", name)
		}
		mpaths[i] = p
	}
	if p, err := im.fetchManifest(ctx, "ArchivedFiles.xml"); err != nil {
		return err
	} else if p != "" {
		if err := im.loadArchives(ctx, p); err != nil {
			return err
		}
	}
	im.pkgItems, im.fileParent, im.fileInt = map[string]string{}, map[string]string{}, map[string]int{}
	for i, p := range mpaths {
		if err := im.eachObject(p, manifests[i], im.check); err != nil {
			return err
		}
	}
	im.expectedObjects += int64(len(im.users))

	// Users count as processed objects.
	for range im.users {
		im.objects++
	}

	// Pass 2: objects in document order.
	for i, p := range mpaths {
		err := im.eachObject(p, manifests[i], func(n *node) error {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return im.apply(ctx, n)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func (im *importer) eachObject(path, name string, fn func(*node) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	err = streamObjects(f, name, fn)
	var se *schemaError
	if errors.As(err, &se) {
		return fatalf("Manifest validation failed: %s", se)
	}
	return err
}

var childFor = map[string]string{
	"SPFile": "File", "SPFolder": "Folder", "SPListItem": "ListItem", "SPDocumentLibrary": "DocumentLibrary",
	"SPList": "List", "SPContentType": "ContentType", "DeploymentUserX": "UserX", "DeploymentGroupX": "GroupX",
	"DeploymentRoles": "Roles", "DeploymentRoleX": "RoleX", "DeploymentRoleAssignments": "RoleAssignments",
	"DeploymentRoleAssignmentX": "RoleAssignmentX",
}

// check is pass 1 for one SPObject: child/ObjectType agreement and the
// fatal id checks of §9.4 step 5.
func (im *importer) check(n *node) error {
	c := im.d.c
	ot := n.attr("ObjectType")
	var child *node
	if len(n.kids) == 1 {
		child = n.kids[0]
	}
	if want, ok := childFor[ot]; ok && child != nil && child.name.Local != want {
		return fatalf("Manifest validation failed: %s", manifestSchema.failAt(child, "SPObject with ObjectType '%s' has child element '%s'; want '%s'", ot, child.name.Local, want))
	}
	webFail := func(el *node, attr string) error {
		return fatalf("%s(%d,%d): %s %s='%s' does not match the container's web id %s", "Manifest", el.line, el.col, el.name.Local, attr, el.attr(attr), c.WebID)
	}
	listFail := func(el *node, attr string) error {
		return fatalf("%s(%d,%d): %s %s='%s' does not match the container's list id %s", "Manifest", el.line, el.col, el.name.Local, attr, el.attr(attr), c.ListID)
	}
	if v := n.attr("ParentWebId"); v != "" && !sameID(v, c.WebID) {
		return webFail(n, "ParentWebId")
	}
	if ot == "SPListItem" && n.attr("ParentId") != "" && !sameID(n.attr("ParentId"), c.ListID) {
		return listFail(n, "ParentId")
	}
	im.expectedObjects++
	if child == nil {
		return nil
	}
	if v := child.attr("ParentWebId"); v != "" && !sameID(v, c.WebID) {
		return webFail(child, "ParentWebId")
	}
	for _, a := range []string{"ListId", "ParentListId", "ContainingDocumentLibrary"} {
		if v := child.attr(a); v != "" && !sameID(v, c.ListID) {
			return listFail(child, a)
		}
	}
	id := strings.ToLower(firstNonEmpty(child.attr("Id"), n.attr("Id")))
	switch child.name.Local {
	case "File":
		im.pkgItems[id] = "file"
		im.fileParent[id] = strings.ToLower(firstNonEmpty(child.attr("ParentId"), n.attr("ParentId")))
		im.fileInt[id], _ = strconv.Atoi(child.attr("ListItemIntId"))
		im.expectedBytes += sizeAttr(child)
		if vs := child.kid("Versions"); vs != nil {
			for _, v := range vs.kids {
				im.expectedBytes += sizeAttr(v)
			}
		}
	case "Folder":
		im.pkgItems[id] = "folder"
		im.fileParent[id] = strings.ToLower(firstNonEmpty(child.attr("ParentFolderId"), n.attr("ParentId")))
		im.fileInt[id], _ = strconv.Atoi(child.attr("ListItemIntId"))
	}
	return nil
}

func sizeAttr(n *node) int64 {
	v, _ := strconv.ParseInt(n.attr("FileSize"), 10, 64)
	return v
}

// apply is pass 2 for one SPObject.
func (im *importer) apply(ctx context.Context, n *node) error {
	var child *node
	if len(n.kids) == 1 {
		child = n.kids[0]
	}
	id := n.attr("Id")
	if child != nil {
		switch child.name.Local {
		case "Folder":
			im.applyFolder(n, child)
		case "File":
			if err := im.applyFile(ctx, n, child); err != nil {
				return err
			}
		case "ListItem":
			im.applyListItem(n, child)
		}
		id = firstNonEmpty(child.attr("Id"), id)
	}
	im.processed(id)
	return nil
}

// objectURL canonicalises a URL attribute to the web-relative form used in
// error events ("Document Library/Contracts/nda.pdf").
func (im *importer) objectURL(raw string) string {
	u := raw
	if p, err := url.Parse(raw); err == nil && p.Host != "" {
		u = p.Path
	} else if dec, err := url.PathUnescape(raw); err == nil {
		u = dec
	}
	u = strings.Trim(u, "/")
	web := strings.Trim(sitePath(im.d.c.SiteURL), "/")
	if web != "" && len(u) >= len(web) && strings.EqualFold(u[:len(web)], web) {
		u = strings.TrimPrefix(u[len(web):], "/")
	}
	return u
}

func sitePath(site string) string {
	if p, err := url.Parse(site); err == nil {
		return p.Path
	}
	return site
}

// resolveUser maps an Author/ModifiedBy value to a person, warning once per
// user as SharePoint does.
func (im *importer) resolveUser(ref, objType, objID, objURL string) person {
	if strings.TrimSpace(ref) == "" {
		return systemAccount
	}
	u := im.users[strings.TrimSpace(ref)]
	if u == nil {
		im.warn(objType, objID, objURL, fmt.Sprintf("User id %s is not declared in UserGroup.xml; System Account is used", ref))
		return systemAccount
	}
	if u.resolved != nil {
		return *u.resolved
	}
	var p person
	switch {
	case u.deleted:
		p = person{Name: u.name, Login: u.login, Email: u.email, Deleted: true}
	case im.s.resolves(u.login):
		p = person{Name: u.name, Login: u.login, Email: u.email}
	case u.systemID != "":
		p = person{Name: u.name, Login: u.login, Email: u.email, Deleted: true}
		im.warn(objType, objID, objURL, fmt.Sprintf("Failed to retrieve user '%s' attributes from the SiteUsers; falling back to passed in values", u.login))
	default:
		p = systemAccount
		im.warn(objType, objID, objURL, fmt.Sprintf("Failed to ensure user '%s'", u.login))
	}
	u.resolved = &p
	return p
}

func (s *Server) resolves(login string) bool {
	if s.cfg.Knobs.Directory == nil {
		l := strings.ToLower(login)
		return strings.HasPrefix(l, "i:0#.f|membership|") && strings.Contains(l, "@")
	}
	for _, d := range s.cfg.Knobs.Directory {
		if strings.EqualFold(d, login) {
			return true
		}
	}
	return false
}

func (im *importer) times(n *node) (created, modified time.Time) {
	now := im.s.cfg.Now().UTC()
	created, modified = now, now
	if t, err := parseDateTime(n.attr("TimeCreated")); err == nil {
		created = t
	}
	if t, err := parseDateTime(n.attr("TimeLastModified")); err == nil {
		modified = t
	}
	return created, modified
}

// claimInt checks a package list item id; 0 means allocate. Callers hold d.mu.
func (im *importer) claimInt(want int, id string) (int, error) {
	d := im.d
	if want <= 0 {
		return d.allocInt(), nil
	}
	if other, taken := d.byInt[want]; taken && other != id {
		if im.s.cfg.Knobs.IntIDCollision == "error" {
			return 0, fmt.Errorf("List item id %d is already used by another item (%s)", want, other)
		}
		if it := d.items[other]; it != nil {
			it.IntID = d.allocInt()
			d.byInt[it.IntID] = other
		}
	}
	return want, nil
}

func (im *importer) applyFolder(n, f *node) {
	d := im.d
	id := strings.ToLower(firstNonEmpty(f.attr("Id"), n.attr("Id")))
	objURL := im.objectURL(firstNonEmpty(f.attr("Url"), n.attr("Url")))
	parentID := strings.ToLower(firstNonEmpty(f.attr("ParentFolderId"), n.attr("ParentId")))
	name := firstNonEmpty(f.attr("Name"), lastSeg(objURL))
	created, modified := im.times(f)
	author := im.resolveUser(f.attr("Author"), "folder", id, objURL)
	editor := im.resolveUser(firstNonEmpty(f.attr("ModifiedBy"), f.attr("Author")), "folder", id, objURL)
	want, _ := strconv.Atoi(f.attr("ListItemIntId"))

	d.mu.Lock()
	defer d.mu.Unlock()
	parent := d.items[parentID]
	if parent == nil || !parent.Folder {
		im.objError("folder", id, objURL, codeNotFound, fmt.Sprintf("Parent folder %s was not found", parentID))
		return
	}
	if ex := d.child(parentID, name); ex != nil && ex.ID != id {
		im.objError("folder", id, objURL, codeFileExists, fmt.Sprintf("A different item named '%s' already exists in the parent folder", name))
		return
	}
	it := d.items[id]
	intID, err := im.claimInt(want, id)
	if err != nil {
		im.objError("folder", id, objURL, codeInvalidArg, err.Error())
		return
	}
	if it == nil {
		it = &item{ID: id, Folder: true}
		d.items[id] = it
	} else {
		it.ETagN++
		if d.byInt[it.IntID] == id {
			delete(d.byInt, it.IntID)
		}
	}
	it.Name, it.ParentID, it.IntID = name, parentID, intID
	it.Created, it.Modified, it.CreatedBy, it.ModifiedBy = created, modified, author, editor
	if it.ETagN == 0 {
		it.ETagN = 1
	}
	d.byInt[intID] = id
}

// applyFile imports a file with its versions. Only I/O failures on the
// emulator's own disk are returned; package problems become object errors.
func (im *importer) applyFile(ctx context.Context, n, f *node) error {
	d := im.d
	id := strings.ToLower(firstNonEmpty(f.attr("Id"), n.attr("Id")))
	objURL := im.objectURL(firstNonEmpty(f.attr("Url"), n.attr("Url")))
	parentID := strings.ToLower(firstNonEmpty(f.attr("ParentId"), n.attr("ParentId")))
	name := firstNonEmpty(f.attr("Name"), lastSeg(objURL))

	d.mu.Lock()
	parent := d.items[parentID]
	d.mu.Unlock()
	if parent == nil || !parent.Folder {
		im.objError("file", id, objURL, codeNotFound, fmt.Sprintf("Parent folder %s was not found", parentID))
		return nil
	}

	// Versions in ascending label order, then the current one.
	vnodes := []*node{}
	if vs := f.kid("Versions"); vs != nil {
		for _, v := range vs.kids {
			if v.name.Local == "File" {
				vnodes = append(vnodes, v)
			}
		}
	}
	sort.SliceStable(vnodes, func(a, b int) bool { return versionLess(vnodes[a].attr("Version"), vnodes[b].attr("Version")) })
	vnodes = append(vnodes, f)

	stage := filepath.Join(im.tmp, "f-"+id)
	if err := os.MkdirAll(stage, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(stage)
	var versions []version
	for i, vn := range vnodes {
		fv := vn.attr("FileValue")
		label := firstNonEmpty(vn.attr("Version"), "1.0")
		if fv == "" {
			im.objError("file", id, objURL, codeNotFound, fmt.Sprintf("Version %s has no FileValue", label))
			return nil
		}
		p := filepath.Join(stage, strconv.Itoa(i)+".bin")
		size, hasSnap, missing, err := im.download(ctx, fv, p)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			im.objError("file", id, objURL, codeBadData, fmt.Sprintf("Cannot decrypt FileValue '%s' (version %s): %v", fv, label, err))
			return nil
		}
		if missing {
			im.objError("file", id, objURL, codeNotFound, fmt.Sprintf("FileValue '%s' (version %s) was not found in the data container", fv, label))
			return nil
		}
		if !hasSnap {
			if im.s.cfg.Knobs.RequireSnapshots {
				im.objError("file", id, objURL, codeNotFound, fmt.Sprintf("FileValue '%s' has no snapshot", fv))
				return nil
			}
			im.warn("file", id, objURL, fmt.Sprintf("FileValue '%s' has no snapshot; the blob itself was used", fv))
		}
		if fs := vn.attr("FileSize"); fs != "" {
			if want, err := strconv.ParseInt(fs, 10, 64); err != nil || want != size {
				im.warn("file", id, objURL, fmt.Sprintf("FileSize %s of version %s differs from the decrypted size %d", fs, label, size))
			}
		}
		created, modified := im.times(vn)
		versions = append(versions, version{
			Label: label, Size: size, Created: created, Modified: modified, path: p,
			CreatedBy:  im.resolveUser(vn.attr("Author"), "file", id, objURL),
			ModifiedBy: im.resolveUser(firstNonEmpty(vn.attr("ModifiedBy"), vn.attr("Author")), "file", id, objURL),
		})
	}

	want, _ := strconv.Atoi(f.attr("ListItemIntId"))
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.items[parentID] == nil {
		im.objError("file", id, objURL, codeNotFound, fmt.Sprintf("Parent folder %s was not found", parentID))
		return nil
	}
	etag := 1
	// Replace semantics: same id or same path → delete with all versions.
	if ex := d.items[id]; ex != nil {
		if ex.Folder {
			im.objError("file", id, objURL, codeFileExists, "The id is already used by a folder")
			return nil
		}
		etag = ex.ETagN + 1
		d.removeFile(ex)
	}
	if ex := d.child(parentID, name); ex != nil {
		if ex.Folder {
			im.objError("file", id, objURL, codeFileExists, fmt.Sprintf("A folder named '%s' already exists in the parent folder", name))
			return nil
		}
		d.removeFile(ex)
	}
	intID, err := im.claimInt(want, id)
	if err != nil {
		im.objError("file", id, objURL, codeInvalidArg, err.Error())
		return nil
	}
	dir := filepath.Join(d.dir, "content", id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i := range versions {
		dst := filepath.Join(dir, strconv.Itoa(i)+".bin")
		if err := os.Rename(versions[i].path, dst); err != nil {
			return err
		}
		versions[i].path = dst
	}
	cur := versions[len(versions)-1]
	first := versions[0]
	d.items[id] = &item{ID: id, Name: name, ParentID: parentID, IntID: intID, ETagN: etag,
		Created: first.Created, Modified: cur.Modified, CreatedBy: first.CreatedBy, ModifiedBy: cur.ModifiedBy, Versions: versions}
	if c, err := parseDateTime(f.attr("TimeCreated")); err == nil {
		d.items[id].Created = c
	}
	d.byInt[intID] = id
	for _, v := range versions {
		im.files++
		im.bytes += v.Size
	}
	im.filesCurrent++
	im.bytesCurrent += cur.Size
	return nil
}

// download streams a data blob through decryption to a file.
func (im *importer) download(ctx context.Context, name, dst string) (size int64, hasSnap, missing bool, err error) {
	if m, ok := im.archives[name]; ok {
		size, err := im.openArchived(m, dst)
		return size, true, false, err
	}
	rc, hasSnap, missing, err := im.openBlob(ctx, im.data, name, true, nil)
	if err != nil || missing {
		return 0, hasSnap, missing, err
	}
	defer rc.Close()
	f, err := os.Create(dst)
	if err != nil {
		return 0, hasSnap, false, err
	}
	defer f.Close()
	size, err = io.Copy(f, rc)
	return size, hasSnap, false, err
}

var knownFields = []string{"Title", "ContentType", "ContentTypeId", "FileLeafRef", "Created", "Modified", "Author", "Editor",
	"_CheckinComment", "_ModerationComments", "_ModerationStatus", "_UIVersionString", "Description", "_Comments", "Keywords", "Subject"}

func (im *importer) applyListItem(n, li *node) {
	d := im.d
	docID := strings.ToLower(li.attr("DocId"))
	objURL := im.objectURL(firstNonEmpty(li.attr("FileUrl"), n.attr("Url")))
	itemID := firstNonEmpty(li.attr("Id"), n.attr("Id"))
	d.mu.Lock()
	defer d.mu.Unlock()
	target := d.items[docID]
	_, inPkg := im.pkgItems[docID]
	if target == nil && !inPkg {
		im.objError("listItem", itemID, objURL, codeNotFound, fmt.Sprintf("DocId %s references no File or Folder in the package or the library", li.attr("DocId")))
		return
	}
	if target == nil {
		return // the File/Folder failed and was reported already
	}
	if pf := li.attr("ParentFolderId"); pf != "" && !sameID(pf, target.ParentID) {
		im.objError("listItem", itemID, objURL, codeInvalidArg, fmt.Sprintf("ParentFolderId %s differs from the parent %s of the item it describes", pf, target.ParentID))
		return
	}
	if iv := li.attr("IntId"); iv != "" {
		if n, err := strconv.Atoi(iv); err == nil && n != target.IntID {
			if pkgInt := im.fileInt[docID]; pkgInt != 0 && pkgInt != n {
				im.warn("listItem", itemID, objURL, fmt.Sprintf("IntId %d differs from the ListItemIntId %d of the item it describes", n, pkgInt))
			} else if pkgInt == 0 {
				if _, err := im.claimInt(n, target.ID); err == nil {
					delete(d.byInt, target.IntID)
					target.IntID = n
					d.byInt[n] = target.ID
				}
			}
		}
	}
	target.ListItemID = strings.ToLower(itemID)
	if fs := li.kid("Fields"); fs != nil {
		for _, fl := range fs.kids {
			name := firstNonEmpty(fl.attr("Name"), fl.attr("ColName"))
			if name == "" {
				continue
			}
			if !contains(knownFields, name) {
				im.warn("listItem", itemID, objURL, fmt.Sprintf("Field '%s' does not exist in the list; its value was ignored", name))
				continue
			}
			if target.Fields == nil {
				target.Fields = map[string]string{}
			}
			target.Fields[name] = fl.attr("Value")
		}
	}
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
