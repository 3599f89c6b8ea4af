// Knowledge: the research corpus — add a file, a URL or text; list, search, delete.
import { useEffect, useState } from "preact/hooks";
import { tool, upload } from "../api.js";
import { html, useAction, useLatest, Notice, Field, when } from "../ui.js";

export function Knowledge({ session, user }) {
  // Lists and searches show the shared corpus and the shown user's own documents (the owner's too).
  const mine = { user_id: user };
  const [forUser, setForUser] = useState(!session.owner);  // the owner adds to the shared corpus unless asked
  const target = forUser ? mine : {};
  const [docs, setDocs] = useState([]);
  const [next, setNext] = useState(null);
  const [total, setTotal] = useState(0);
  const [url, setUrl] = useState("");
  const [query, setQuery] = useState("");
  const [hits, setHits] = useState(null);
  const [state, run] = useAction();
  const latest = useLatest();
  const load = (cursor) => run(async () => {
    const current = latest();
    const r = await tool("research", "corpus_list", { ...mine, limit: 50, cursor });
    if (!current()) return;
    setDocs(cursor ? [...docs, ...r.documents] : r.documents);
    setNext(r.next_cursor); setTotal(r.total);
  });
  useEffect(() => { load(null); }, [user]);
  const added = (r) => `${r.duplicate ? "Already there" : "Added"}: “${r.document.title}” (${r.document.chunks} passages).`;
  const addFile = (e) => {
    const file = e.target.files[0];
    if (file) run(async () => { const r = await upload(file, target.user_id); e.target.value = ""; await load(null); return r; }, added);
  };
  const addUrl = (e) => {
    e.preventDefault();
    run(async () => { const r = await tool("research", "corpus_add", { ...target, url }); setUrl(""); await load(null); return r; }, added);
  };
  const search = (e) => {
    e.preventDefault();
    run(async () => setHits((await tool("research", "corpus_search", { ...mine, query, limit: 10 })).results));
  };
  const remove = (d) => confirm(`Delete “${d.title}” and its ${d.chunks} passages?`) &&
    run(async () => { await tool("research", "corpus_delete", { ...(session.owner ? {} : mine), doc_id: d.doc_id }); await load(null); },
      () => `Deleted “${d.title}”.`);
  return html`<p class="lead">The knowledge corpus holds documents the avatar looks things up in when it answers or
      researches (beside the web, when a Tavily key is set). Shared documents serve everyone; a person's own
      documents serve only them, and “Forget me” erases them.</p>
    <section aria-labelledby="kadd-h"><h2 id="kadd-h">Add</h2>
      ${session.owner ? html`<fieldset class="choice"><legend>Add to</legend>
        <label><input type="radio" name="doc-for" id="doc-shared" checked=${!forUser} onChange=${() => setForUser(false)} /> the shared corpus</label>
        <label><input type="radio" name="doc-for" id="doc-for-user" checked=${forUser} onChange=${() => setForUser(true)} /> user “${user}”'s own documents</label>
      </fieldset>` : null}
      <${Field} label="A file (.pdf, .txt, .md, .html)"><input id="doc-file" type="file" accept=".pdf,.txt,.md,.html,.htm" onChange=${addFile} disabled=${state.busy} /></${Field}>
      <form class="inline" onSubmit=${addUrl}>
        <${Field} label="A public web page"><input id="doc-url" type="url" required value=${url} onInput=${(e) => setUrl(e.target.value)} /></${Field}>
        <button type="submit">Fetch and add</button></form>
      ${state.busy ? html`<progress aria-label="Adding the document"></progress>` : null}
    </section>
    <${Notice} state=${state} />
    <section aria-labelledby="ksearch-h"><h2 id="ksearch-h">Search</h2>
      <form class="inline" role="search" onSubmit=${search}>
        <${Field} label="Search the corpus"><input id="corpus-q" type="search" required value=${query} onInput=${(e) => setQuery(e.target.value)} /></${Field}>
        <button type="submit" id="corpus-search">Search</button></form>
      ${hits && !hits.length ? html`<p id="no-hits">Nothing in the corpus matches.</p>` : null}
      ${hits ? html`<ol class="cards" id="hits">${hits.map((h) => html`<li class="card"><strong>${h.title}</strong>
        <small> score ${h.score.toFixed(3)}</small><p>${h.text}</p></li>`)}</ol>` : null}
    </section>
    <section aria-labelledby="kdocs-h"><h2 id="kdocs-h">${total} ${total === 1 ? "document" : "documents"}</h2>
      <p class="meta">The shared corpus and user “${user}”'s own documents.</p>
      ${docs.length ? html`<table id="docs" class="stack"><thead><tr><th scope="col">Title</th><th scope="col">Source</th><th scope="col">Passages</th>
        <th scope="col">Added</th><th scope="col">Whose</th><th scope="col"><span class="sr">Actions</span></th></tr></thead>
        <tbody>${docs.map((d) => html`<tr><td data-label="Title">${d.title}</td><td data-label="Source">${d.source_type}</td>
          <td data-label="Passages">${d.chunks}</td><td data-label="Added">${when(new Date(d.added_at * 1000).toISOString())}</td>
          <td data-label="Whose">${d.user_id || "shared"}</td>
          <td><button class="danger" onClick=${() => remove(d)} aria-label=${`Delete ${d.title}`}>Delete</button></td></tr>`)}</tbody></table>`
      : html`<p class="empty" id="docs-empty">No documents yet. Add a file or a web page above; the avatar can then look things up in it.</p>`}
      ${next ? html`<button onClick=${() => load(next)}>More</button>` : null}
    </section>`;
}
