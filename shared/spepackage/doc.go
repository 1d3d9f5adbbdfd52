// Package spepackage builds the SharePoint import package that the Graph SPE
// migration API reads (spec §6): Manifest.xml and its seven companion files,
// and the AES-256-CBC encryption every blob of the package must carry (§5).
//
// # Streaming
//
// [Build] writes each file of the package as an XML stream into a writer the
// caller opens per file, so the memory a package costs does not grow with
// the size of its content and barely with its item count: only the set of
// folders already emitted and the users seen are kept. [NewEncryptReader]
// encrypts any stream in constant memory and hands back the ciphertext's
// length and MD5 when it reaches EOF, which is what a blob upload needs for
// Content-MD5.
//
// # Identities
//
// SharePoint uses package ids verbatim, and a new GUID for content already
// imported conflicts with the old one (§6.5). Every GUID here is therefore a
// name-based UUID (version 5, SHA-1) over the caller's namespace UUID and the
// normalised library-relative path of the object (see [ObjectID]): the same
// path always gets the same id, so restaging, resubmitting or re-running a
// migration replaces instead of duplicating. Pick the namespace per target
// (container and destination), not per run, if incremental re-runs should
// replace what earlier runs imported.
//
// List-item integer ids cannot be derived from a path without risking
// collisions in the 31-bit space, so they come from the caller through the
// [IntIDs] interface: it must return the same id for a path every time it is
// asked within a migration (a folder that appears in several batches keeps
// its id) and never hand one id to two paths. The pipeline backs it with
// durable state (a counter plus one record per path); [MemoryIntIDs] is the
// in-process form for tests and single-process runs. Start the counter above
// the library's current highest item id.
//
// # Authors
//
// An item that carries an identity (a login or an e-mail address) gets a
// User entry in UserGroup.xml, declared once per package, and its Author and
// ModifiedBy point at it. An item without one gets no Author/ModifiedBy
// attributes at all, so SharePoint applies its default (the migrating
// account). [Report] says, per item, which of the two happened.
package spepackage
