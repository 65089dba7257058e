# PyTorch's training step under autocast to bfloat16 on the CPU: the peer of lmkit's bf16
# products (bench_train's and bench_lstm's *_bf16 rows), the same models and settings as the fp32
# peers in ../shared/peers/pytorch/ (train_gpt_shakespeare.py, train_gpt2_step.py, whose GPT it
# imports; train_lstm_shakespeare.py, whose char LSTM is written out again below).
#
#   PEER_THREADS=1 python3 bench/pytorch_autocast_step.py shakespeare|gpt2|lstm [PEERS_DIR]
#
# Prints "<ms> ms/step" (mean after warm-up) and the peak resident memory. Random tokens: only
# the time matters here (the fp32 script measures the loss). PyTorch 1.13's CPU autocast leaves
# nn.LSTM in fp32: of the LSTM's step only the output layer's products go to bf16 (the lstm line
# prints the dtypes autocast gave both).
import os
import resource
import sys
import time

peers = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                            '../../shared/peers/pytorch')
sys.path.insert(0, peers)
import torch  # noqa: E402
from gpt import GPT  # noqa: E402

torch.set_num_threads(int(os.environ.get('PEER_THREADS', '2')))
torch.manual_seed(0)
which = sys.argv[1] if len(sys.argv) > 1 else 'shakespeare'
if which == 'lstm':  # the char LSTM: embedding 64, 2 x 256, 32 streams x 64 steps, Adam 2e-3, clip 5
    vocab, B, T, steps, warm = 65, 32, 64, 60, 10

    class LM(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(vocab, 64)
            self.rnn = torch.nn.LSTM(64, 256, 2, batch_first=True)
            self.out = torch.nn.Linear(256, vocab)

        def forward(self, x, y, h):
            out, h = self.rnn(self.emb(x), h)
            logits = self.out(out)
            self.dtypes = (out.dtype, logits.dtype)  # what autocast made of nn.LSTM and the output layer
            return torch.nn.functional.cross_entropy(logits.reshape(-1, vocab).float(), y.reshape(-1)), h

    lm = LM()
    opt = torch.optim.Adam(lm.parameters(), lr=2e-3)
    times, h = [], None
    for step in range(steps):
        x = torch.randint(vocab, (B, T))
        y = torch.randint(vocab, (B, T))
        t0 = time.time()
        with torch.autocast('cpu', dtype=torch.bfloat16):
            loss, h = lm(x, y, h)
        h = tuple(s.detach() for s in h)  # truncated BPTT: the state carried, no gradient into it
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(lm.parameters(), 5.0)
        opt.step()
        times.append(time.time() - t0)
    mean = sum(times[warm:]) / len(times[warm:])
    print(f"lstm autocast bf16, torch {torch.__version__}, threads {torch.get_num_threads()}: {1000 * mean:.2f} ms/step; "
          f"loss {loss.item():.4f}; peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB; "
          f"under autocast nn.LSTM gives {lm.dtypes[0]}, the output layer {lm.dtypes[1]}")
    sys.exit(0)
if which == 'shakespeare':  # nanoGPT's CPU config, AdamW, clipping at 1.0
    vocab, B, T, steps, warm = 65, 12, 64, 200, 20
    m = GPT(vocab, T, 4, 4, 128, bias=False)
    opt, clip = m.optimizer(1e-3, 0.1, (0.9, 0.99)), 1.0
else:  # GPT-2 small's shape at 4 x 256, AdamW
    vocab, B, T, steps, warm = 50257, 4, 256, 7, 2
    m = GPT(vocab, 1024, 12, 12, 768, bias=True)
    opt, clip = m.optimizer(6e-4, 0.1, (0.9, 0.95)), 0.0
times = []
for step in range(steps):
    x = torch.randint(vocab, (B, T))
    y = torch.randint(vocab, (B, T))
    t0 = time.time()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        _, loss = m(x, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if clip > 0:
        torch.nn.utils.clip_grad_norm_(m.parameters(), clip)
    opt.step()
    times.append(time.time() - t0)
mean = sum(times[warm:]) / len(times[warm:])
print(f"{which} autocast bf16, torch {torch.__version__}, threads {torch.get_num_threads()}: {1000 * mean:.2f} ms/step; "
      f"loss {loss.item():.4f}; peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
