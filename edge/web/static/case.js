// Signed case export (docs/case-bundles.md): a supervisor exports the record on screen, or every pass of
// its vehicle (by its plate, container code or tag), with a reason; the station signs and audits it.
"use strict";

const CASE_KINDS = ["plate", "container", "rfid_tid"];  // what names a vehicle, strongest first

function caseSelection(rec) {
  if (!$("case-vehicle").checked) return { record_ids: [rec.id] };
  for (const kind of CASE_KINDS) {
    const ident = (rec.identities || []).find((i) => i.kind === kind && i.value);
    if (ident) return { identity: kind + "=" + ident.value };
  }
  return { record_ids: [rec.id] };
}

async function exportCase() {
  const rec = S.current, msg = $("case-export-msg");
  if (!rec) return;
  const reason = $("case-reason").value;
  if (!reason.trim()) { msg.textContent = T("error.reason_required"); return; }
  const r = await fetch("/api/case-bundles", { method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json" }, body: JSON.stringify({ ...caseSelection(rec), reason }) });
  if (!r.ok) {
    const body = r.headers.get("content-type")?.includes("json") ? await r.json() : null;
    msg.textContent = tr("error.", typeof body?.detail === "string" ? body.detail : "request_failed");
    return;
  }
  const name = (r.headers.get("content-disposition") || "").match(/filename="([^"]+)"/)?.[1] || "case.zip";
  const a = document.createElement("a");
  a.href = URL.createObjectURL(await r.blob()); a.download = name; document.body.append(a); a.click();
  setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  msg.textContent = T("case.exported", { sha: (r.headers.get("x-manifest-sha256") || "").slice(0, 16) });
  $("case-reason").value = "";
}

$("case-export-btn").onclick = exportCase;
