/** A labelled progress bar (native <progress>, so assistive tech reads the value). */
import { percent } from '../format.ts';

/** Shows done/total with a text label beside the bar. */
export function ProgressBar({ label, done, total, text }: { label: string; done: number; total: number; text?: string }) {
  const p = percent(done, total);
  return (
    <div className="progress">
      <progress aria-label={label} max={100} value={p} />
      <span className="progress-text">{text ?? `${p.toFixed(0)} %`}</span>
    </div>
  );
}
