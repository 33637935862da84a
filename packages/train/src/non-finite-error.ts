/**
 * Thrown by the trainer when a step's loss or a gradient is NaN or ±Infinity. The step is not
 * applied (the weights and optimizer state are those of the step before), and checkpoints
 * already written stay intact.
 */
export class NonFiniteError extends Error {
  /** The optimizer step (1-based) that produced the non-finite value. */
  readonly step: number;
  /** The loss of the step (NaN or ±Infinity if the loss itself is the problem). */
  readonly loss: number;
  /** The name of the first parameter (in optimizer order) whose gradient is not finite, if any. */
  readonly variable: string | undefined;

  /**
   * @param step the 1-based step.
   * @param loss the loss.
   * @param variable the first parameter with a non-finite gradient.
   * @param where position in the data, for the message.
   */
  constructor(step: number, loss: number, variable: string | undefined, where: string) {
    const what = !Number.isFinite(loss) ? `non-finite loss (${loss})` : `non-finite gradient`;
    super(
      `${what} at step ${step} (${where})` +
        (variable !== undefined ? `; first parameter with a non-finite gradient: '${variable}'` : '; every gradient is finite') +
        '. The step was not applied; the last checkpoint is intact.',
    );
    this.name = 'NonFiniteError';
    this.step = step;
    this.loss = loss;
    this.variable = variable;
  }
}
