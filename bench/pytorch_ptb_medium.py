# PyTorch's step for Zaremba et al.'s "medium" PTB LSTM, the peer of `ptb_lstm --medium`: 2 layers
# x 650, dropout 0.5 on the embeddings, between the layers and on the output (PyTorch's word
# language model example), 35 steps x batch 20, SGD at rate 1 on the loss summed over the steps,
# gradient norm clipped at 5, every parameter uniform in +-0.05. Times the first STEPS steps of the
# first epoch (the whole run is hours on two cores) and prints the validation perplexity then.
#
#   OPENBLAS_NUM_THREADS=2 PEER_THREADS=2 python3 bench/pytorch_ptb_medium.py [STEPS] [PTB_DIR]
#
# (OPENBLAS_NUM_THREADS too: with Debian's pthread OpenBLAS as libblas, torch's thread count does
# not reach the matrix products.)
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(int(os.environ.get('PEER_THREADS', '2')))
torch.manual_seed(1234)
STEPS = int(sys.argv[1]) if len(sys.argv) > 1 else 60
D = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(os.path.abspath(__file__)), '../../shared/data/ptb')


def words(name):
    return [w for line in open(os.path.join(D, f'ptb.{name}.txt')) for w in line.split() + ['<eos>']]


train_w, valid_w = words('train'), words('valid')
vocab = {w: i for i, w in enumerate(sorted(set(train_w)))}
V = len(vocab)
B, T, H, L, P = 20, 35, 650, 2, 0.5


def batchify(ws):
    x = torch.tensor([vocab[w] for w in ws], dtype=torch.long)
    n = len(x) // B
    return x[:n * B].view(B, n)


train, valid = batchify(train_w), batchify(valid_w)


class LM(nn.Module):
    def __init__(s):
        super().__init__()
        s.emb = nn.Embedding(V, H)
        s.rnn = nn.LSTM(H, H, L, batch_first=True, dropout=P)
        s.drop = nn.Dropout(P)
        s.out = nn.Linear(H, V)
        for p in s.parameters():
            nn.init.uniform_(p, -0.05, 0.05)

    def forward(s, x, h=None):
        y, h = s.rnn(s.drop(s.emb(x)), h)
        return s.out(s.drop(y)), h


m = LM()


@torch.no_grad()
def perplexity(data):
    m.eval()
    h, tot, n = None, 0.0, 0
    for i in range(0, data.size(1) - 1, T):
        x, y = data[:, i:i + T], data[:, i + 1:i + 1 + T]
        x = x[:, :y.size(1)]
        logits, h = m(x, h)
        tot += F.cross_entropy(logits.reshape(-1, V), y.reshape(-1), reduction='sum').item()
        n += y.numel()
    m.train()
    return math.exp(tot / n)


h, t0, steps = None, time.time(), 0
for i in range(0, train.size(1) - 1, T):
    if steps == STEPS:
        break
    x, y = train[:, i:i + T], train[:, i + 1:i + 1 + T]
    x = x[:, :y.size(1)]
    logits, h = m(x, h)
    h = tuple(t.detach() for t in h)
    loss = F.cross_entropy(logits.reshape(-1, V), y.reshape(-1)) * y.size(1)
    m.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(m.parameters(), 5.0)
    with torch.no_grad():
        for p in m.parameters():
            p -= 1.0 * p.grad
    steps += 1
dt = time.time() - t0
print(f"medium, {steps} steps: valid ppl {perplexity(valid):.2f} ({1000 * dt / steps:.1f} ms/step, torch {torch.__version__}, "
      f"{torch.get_num_threads()} threads)", flush=True)
