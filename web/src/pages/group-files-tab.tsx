/**
 * A group's files: search and filters (type, sharer, date, size) with sort, upload with a progress bar, download
 * (verified against the catalogue's SHA-256 before it is saved) and unshare.
 */
import { useEffect, useRef, useState, type FormEvent } from 'react';
import type { CatalogueFile, FileQuery } from '../../../src/protocol/api.ts';
import { errorMessage } from '../api.ts';
import { ConfirmButton } from '../components/confirm-button.tsx';
import { ErrorNotice, SelectField, TextField, OkNotice, SubmitButton } from '../components/field.tsx';
import { DataTable } from '../components/data-table.tsx';
import { ProgressBar } from '../components/progress-bar.tsx';
import { formatBytes, formatDate, parseSize } from '../format.ts';
import { useLiveRefresh } from '../live.tsx';
import { useSession } from '../session.tsx';
import { useLoad } from '../use-load.ts';

interface Filters {
  search: string;
  type: string;
  sharer: string;
  since: string;
  minSize: string;
  maxSize: string;
  sort: 'name' | 'size' | 'date';
}

const emptyFilters: Filters = { search: '', type: '', sharer: '', since: '', minSize: '', maxSize: '', sort: 'date' };

/** The files tab. */
export function FilesTab({ group, manage }: { group: string; manage: boolean }) {
  const { api, user } = useSession();
  const [filters, setFilters] = useState<Filters>(emptyFilters);
  const [applied, setApplied] = useState<Filters>(emptyFilters);
  const [sizeErrors, setSizeErrors] = useState<Record<string, string>>({});

  // Apply filters shortly after typing stops, so the list follows the search box without a button press.
  useEffect(() => {
    const t = setTimeout(() => {
      const errs: Record<string, string> = {};
      for (const k of ['minSize', 'maxSize'] as const) {
        if (Number.isNaN(parseSize(filters[k]))) errs[k] = 'A size like 1500, 200K, 10M or 2G.';
      }
      setSizeErrors(errs);
      if (Object.keys(errs).length === 0) setApplied(filters);
    }, 250);
    return () => clearTimeout(t);
  }, [filters]);

  const files = useLoad((signal) => {
    const q: FileQuery = { sort: applied.sort };
    if (applied.search.trim()) q.search = applied.search.trim();
    if (applied.type.trim()) q.type = applied.type.trim().replace(/^\./, '').toLowerCase();
    if (applied.sharer.trim()) q.sharer = applied.sharer.trim();
    if (applied.since) q.since = new Date(applied.since).toISOString();
    const min = parseSize(applied.minSize);
    const max = parseSize(applied.maxSize);
    if (min !== undefined) q.minSize = min;
    if (max !== undefined) q.maxSize = max;
    return api.call('listFiles', { params: { group }, query: q, signal });
  }, [api, group, applied]);
  useLiveRefresh(files.reload, (e) => e.kind === 'catalogue' && e.group === group, 15_000);

  const set = (k: keyof Filters) => (e: { target: { value: string } }) => setFilters((f) => ({ ...f, [k]: e.target.value }));
  const filtered = JSON.stringify({ ...applied, sort: 'date' }) !== JSON.stringify(emptyFilters);

  return (
    <section aria-labelledby="files-title">
      <h2 id="files-title">Files</h2>
      <UploadForm group={group} onUploaded={files.reload} />
      <form className="filters card" role="search" aria-label="Search files" onSubmit={(e: FormEvent) => e.preventDefault()}>
        <TextField label="Search" name="search" type="search" placeholder="part of a name" value={filters.search} onChange={set('search')} />
        <TextField label="Type" name="type" placeholder="e.g. iso, pdf" value={filters.type} onChange={set('type')} />
        <TextField label="Shared by" name="sharer" placeholder="username" autoCapitalize="none" value={filters.sharer} onChange={set('sharer')} />
        <TextField label="Shared since" name="since" type="date" value={filters.since} onChange={set('since')} />
        <TextField label="Min size" name="minSize" placeholder="e.g. 10M" value={filters.minSize} onChange={set('minSize')} error={sizeErrors.minSize} />
        <TextField label="Max size" name="maxSize" placeholder="e.g. 2G" value={filters.maxSize} onChange={set('maxSize')} error={sizeErrors.maxSize} />
        <SelectField label="Sort by" name="sort" value={filters.sort} onChange={set('sort')}>
          <option value="date">date</option>
          <option value="name">name</option>
          <option value="size">size</option>
        </SelectField>
        {filtered && (
          <div className="actions">
            <button type="button" onClick={() => setFilters(emptyFilters)}>
              Clear filters
            </button>
          </div>
        )}
      </form>
      <ErrorNotice error={files.error ? errorMessage(files.error) : null} />
      <p className="sr-only" role="status" aria-live="polite">
        {files.data ? `${files.data.files.length} file${files.data.files.length === 1 ? '' : 's'}` : ''}
      </p>
      {files.data && files.data.files.length === 0 && (
        <p className="empty">{filtered ? 'No file matches these filters.' : 'No files shared yet.'}</p>
      )}
      {files.data && files.data.files.length > 0 && (
        <DataTable columns={['Name', 'Size', 'Type', 'Shared by', 'Shared', { srOnly: 'Actions' }]} label="Files">
          {files.data.files.map((f) => (
            <FileRow
              key={f.id}
              file={f}
              canUnshare={manage || f.sharedBy === user?.username}
              onUnshared={files.reload}
            />
          ))}
        </DataTable>
      )}
    </section>
  );
}

function FileRow({ file, canUnshare, onUnshared }: { file: CatalogueFile; canUnshare: boolean; onUnshared: () => void }) {
  const { api } = useSession();
  const [progress, setProgress] = useState<{ done: number; total: number } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const download = async () => {
    setError(null);
    setProgress({ done: 0, total: file.size });
    try {
      const res = await api.download('downloadFile', { params: { group: file.group, fileId: file.id } });
      if (!res.body) throw new Error('the server sent no bytes');
      const reader = res.body.getReader();
      const parts: Uint8Array[] = [];
      let done = 0;
      for (;;) {
        const r = await reader.read();
        if (r.done) break;
        parts.push(r.value);
        done += r.value.byteLength;
        setProgress({ done, total: file.size });
      }
      const blob = new Blob(parts as BlobPart[]);
      const digest = await crypto.subtle.digest('SHA-256', await blob.arrayBuffer());
      const hex = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
      if (hex !== file.sha256) throw new Error('the download does not match its SHA-256; nothing was saved');
      const a = document.createElement('a');
      a.href = URL.createObjectURL(blob);
      a.download = file.name;
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 60_000);
      setProgress(null);
    } catch (err) {
      setProgress(null);
      setError(errorMessage(err));
    }
  };
  return (
    <tr>
      <th scope="row" className="wrap">
        {file.name}
        {error && (
          <span className="field-error" role="alert">
            {error}
          </span>
        )}
        {progress && <ProgressBar label={`Downloading ${file.name}`} done={progress.done} total={progress.total} />}
      </th>
      <td>{formatBytes(file.size)}</td>
      <td>{file.type || '–'}</td>
      <td>{file.sharedBy}</td>
      <td>{formatDate(file.sharedAt)}</td>
      <td className="row-actions">
        <button type="button" aria-label={`Download ${file.name}`} onClick={() => void download()} disabled={progress !== null}>
          Download
        </button>
        {canUnshare && (
          <ConfirmButton
            label="Unshare"
            accessibleLabel={`Unshare ${file.name}`}
            question={`Stop sharing “${file.name}”?`}
            confirmLabel="Unshare"
            onConfirm={async () => {
              await api.call('unshareFile', { params: { group: file.group, fileId: file.id } });
              onUnshared();
            }}
          />
        )}
      </td>
    </tr>
  );
}

/** Upload form: a file input and a progress bar while the bytes go up. */
export function UploadForm({
  group,
  onUploaded,
  label = 'Share a file',
}: {
  group: string;
  onUploaded: (file: CatalogueFile) => void;
  label?: string;
}) {
  const { api } = useSession();
  const input = useRef<HTMLInputElement>(null);
  const [file, setFile] = useState<File | null>(null);
  const [progress, setProgress] = useState<{ done: number; total: number } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setDone(null);
    if (!file) {
      setError('Choose a file first.');
      return;
    }
    setError(null);
    setProgress({ done: 0, total: file.size });
    try {
      const res = await api.upload('shareFile', {
        params: { group },
        query: { name: file.name },
        file,
        onProgress: (d, t) => setProgress({ done: d, total: t }),
      });
      setDone(`Shared ${res.file.name} (${formatBytes(res.file.size)}).`);
      setFile(null);
      if (input.current) input.current.value = '';
      onUploaded(res.file);
    } catch (err) {
      setError(errorMessage(err));
    } finally {
      setProgress(null);
    }
  };
  return (
    <form className="card upload" onSubmit={(e) => void submit(e)} noValidate>
      <TextField
        ref={input}
        label={label}
        name="file"
        type="file"
        onChange={(e) => {
          setFile(e.target.files?.[0] ?? null);
          setError(null);
        }}
        error={error}
      />
      <SubmitButton disabled={progress !== null}>Upload</SubmitButton>
      {progress && (
        <ProgressBar
          label="Upload progress"
          done={progress.done}
          total={progress.total}
          text={`${formatBytes(progress.done)} of ${formatBytes(progress.total)}`}
        />
      )}
      <OkNotice message={done} />
    </form>
  );
}
