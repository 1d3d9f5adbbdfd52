// Package staging turns a page of named source items into import packages
// and puts them where the SPE migration service reads them.
//
// [Plan] is pure: it cuts items into batches within the service's recommended
// package limits (spec §6.8). [Stager.Stage] stages one batch: every file
// version is streamed from the source through AES-256-CBC encryption into a
// block blob in the provisioned data container (Content-MD5 of the stored
// bytes and the IV as metadata, then a snapshot, spec §4–§5), and only then
// are the package's manifests built, encrypted and uploaded to the metadata
// container. Items whose source cannot be read are reported and left out of
// the manifest, so one vanished blob does not fail a batch.
//
// Memory is bounded by a fixed pool of block buffers shared by all files in
// flight, whatever the file sizes. Blob names derive from the item's
// deterministic object id, so staging a batch again writes the same blobs.
//
// SAS URLs and the key never reach a log line or an error message: errors
// carry the blob name, the HTTP status and the service's error code, and any
// URL in them has its query string removed.
package staging
