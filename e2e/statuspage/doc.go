// Package statuspage holds the status page's browser test: a running and a
// finished migration on the whole local stack, their pages opened in
// headless Chromium (the system's, driven by playwright-core from
// infra/local/browser/statuspage.js), checked and screenshotted. It needs
// /usr/bin/chromium (or SPEMIGRATE_CHROMIUM) and fails without it; it skips
// under -short.
package statuspage
