/* Winograd F(4x4x4, 3x3x3): the input and output transforms of segforge.networks.winograd.
 *
 * One sample, NCDHW float32 in and out. A 4x4x4 block of outputs needs a 6x6x6 block of
 * inputs (one voxel of zero padding around the image); the input transform B^T d B turns each
 * input block into 216 values, which the caller multiplies per position with the transformed
 * weights (216 matrix products (blocks, C_in) @ (C_in, C_out), torch.bmm); the output transform
 * A^T m A turns the 216 products back into 4x4x4 outputs and adds the bias.
 *
 * V and M are (216, T, C): position-major, then block, then channel. Only the block rows
 * [bd0, bd1) along the first axis are done, so the caller bounds memory by slabs. The arithmetic
 * runs on CB channels at a time (C must be a multiple of CB) so that compilers vectorise it.
 * Work is split over `threads` threads by block rows: with OpenMP (compiled with -fopenmp and
 * linked to the OpenMP runtime torch uses, so the work runs on torch's pool), else POSIX threads.
 */
#include <pthread.h>
#include <string.h>

#define CB 8
#define MAX_THREADS 256

/* six values d[0..5] (stride s) -> B^T d, six values o[0..5] (stride s), CB channels each */
#define BT(o, d, s) do { for (int c = 0; c < CB; c++) { \
    float d0 = (d)[0 * (s) + c], d1 = (d)[1 * (s) + c], d2 = (d)[2 * (s) + c]; \
    float d3 = (d)[3 * (s) + c], d4 = (d)[4 * (s) + c], d5 = (d)[5 * (s) + c]; \
    (o)[0 * (s) + c] = 4 * d0 - 5 * d2 + d4; \
    (o)[1 * (s) + c] = -4 * d1 - 4 * d2 + d3 + d4; \
    (o)[2 * (s) + c] = 4 * d1 - 4 * d2 - d3 + d4; \
    (o)[3 * (s) + c] = -2 * d1 - d2 + 2 * d3 + d4; \
    (o)[4 * (s) + c] = 2 * d1 - d2 - 2 * d3 + d4; \
    (o)[5 * (s) + c] = 4 * d1 - 5 * d3 + d5; } } while (0)

/* six products m[0..5] (stride si) -> A^T m, four outputs o[0..3] (stride so) */
#define AT(o, m, si, so) do { for (int c = 0; c < CB; c++) { \
    float m0 = (m)[0 * (si) + c], m1 = (m)[1 * (si) + c], m2 = (m)[2 * (si) + c]; \
    float m3 = (m)[3 * (si) + c], m4 = (m)[4 * (si) + c], m5 = (m)[5 * (si) + c]; \
    (o)[0 * (so) + c] = m0 + m1 + m2 + m3 + m4; \
    (o)[1 * (so) + c] = m1 - m2 + 2 * m3 - 2 * m4; \
    (o)[2 * (so) + c] = m1 + m2 + 4 * m3 + 4 * m4; \
    (o)[3 * (so) + c] = m1 - m2 + 8 * m3 - 8 * m4 + m5; } } while (0)

typedef struct {
    const float *src;   /* x (input transform) or M (output transform) */
    const float *bias;  /* NULL: none */
    float *dst;         /* V or out */
    long C, D, H, W, bd0, bd1, row0, row1;
} job_t;

static void input_rows(const job_t *j) {
    long th = (j->H + 3) / 4, tw = (j->W + 3) / 4, T = (j->bd1 - j->bd0) * th * tw;
    float p[216 * CB], q[216 * CB]; /* [a][b][e][c] */
    for (long row = j->row0; row < j->row1; row++) {
        long bd = j->bd0 + row / th, bh = row % th;
        for (long bw = 0; bw < tw; bw++) {
            long t = row * tw + bw;
            for (long c0 = 0; c0 < j->C; c0 += CB) {
                for (int a = 0; a < 6; a++) {
                    long z = 4 * bd + a - 1;
                    for (int b = 0; b < 6; b++) {
                        long y = 4 * bh + b - 1;
                        int inside = z >= 0 && z < j->D && y >= 0 && y < j->H;
                        for (int c = 0; c < CB; c++) {
                            const float *line = j->src + (((c0 + c) * j->D + z) * j->H + y) * j->W;
                            for (int e = 0; e < 6; e++) {
                                long w = 4 * bw + e - 1;
                                p[((a * 6 + b) * 6 + e) * CB + c] = (inside && w >= 0 && w < j->W) ? line[w] : 0.0f;
                            }
                        }
                    }
                }
                for (int ab = 0; ab < 36; ab++) BT(q + ab * 6 * CB, p + ab * 6 * CB, CB);          /* along w */
                for (int a = 0; a < 6; a++)
                    for (int k = 0; k < 6; k++) BT(p + (a * 36 + k) * CB, q + (a * 36 + k) * CB, 6 * CB); /* along h */
                for (int jk = 0; jk < 36; jk++) BT(q + jk * CB, p + jk * CB, 36 * CB);                /* along d */
                for (int ijk = 0; ijk < 216; ijk++)
                    memcpy(j->dst + (ijk * T + t) * j->C + c0, q + ijk * CB, CB * sizeof(float));
            }
        }
    }
}

static void output_rows(const job_t *j) {
    long th = (j->H + 3) / 4, tw = (j->W + 3) / 4, T = (j->bd1 - j->bd0) * th * tw;
    float p[216 * CB], q[216 * CB];
    for (long row = j->row0; row < j->row1; row++) {
        long bd = j->bd0 + row / th, bh = row % th;
        for (long bw = 0; bw < tw; bw++) {
            long t = row * tw + bw;
            for (long c0 = 0; c0 < j->C; c0 += CB) {
                for (int ijk = 0; ijk < 216; ijk++)
                    memcpy(p + ijk * CB, j->src + (ijk * T + t) * j->C + c0, CB * sizeof(float));
                for (int ij = 0; ij < 36; ij++) AT(q + ij * 4 * CB, p + ij * 6 * CB, CB, CB);      /* along w: 6x6x4 */
                for (int i = 0; i < 6; i++)
                    for (int o = 0; o < 4; o++) AT(p + (i * 16 + o) * CB, q + (i * 24 + o) * CB, 4 * CB, 4 * CB); /* h */
                for (int o = 0; o < 16; o++) AT(q + o * CB, p + o * CB, 16 * CB, 16 * CB);          /* along d: 4x4x4 */
                for (int c = 0; c < CB; c++) {
                    float bias = j->bias ? j->bias[c0 + c] : 0.0f;
                    for (int o1 = 0; o1 < 4 && 4 * bd + o1 < j->D; o1++)
                        for (int o2 = 0; o2 < 4 && 4 * bh + o2 < j->H; o2++) {
                            float *line = j->dst + (((c0 + c) * j->D + 4 * bd + o1) * j->H + 4 * bh + o2) * j->W + 4 * bw;
                            for (int o3 = 0; o3 < 4 && 4 * bw + o3 < j->W; o3++)
                                line[o3] = q[((o1 * 4 + o2) * 4 + o3) * CB + c] + bias;
                        }
                }
            }
        }
    }
}

static void *run_input(void *job) { input_rows((const job_t *)job); return NULL; }
static void *run_output(void *job) { output_rows((const job_t *)job); return NULL; }

#ifdef _OPENMP
/* Built against the OpenMP runtime torch has loaded: the rows go to torch's own worker threads,
 * which would otherwise spin-wait beside threads of ours (measured: Winograd layers 1.6x slower). */
static void split(job_t base, int threads, void *(*fn)(void *)) {
    long rows = (base.bd1 - base.bd0) * ((base.H + 3) / 4);
    if (threads < 1) threads = 1;
    if (threads > rows) threads = (int)rows;
#pragma omp parallel for num_threads(threads) schedule(static, 1)
    for (int i = 0; i < threads; i++) {
        job_t job = base;
        job.row0 = rows * i / threads;
        job.row1 = rows * (i + 1) / threads;
        fn(&job);
    }
}
#else
static void split(job_t base, int threads, void *(*fn)(void *)) {
    job_t jobs[MAX_THREADS];
    pthread_t ids[MAX_THREADS];
    int started[MAX_THREADS];
    long rows = (base.bd1 - base.bd0) * ((base.H + 3) / 4);
    if (threads < 1) threads = 1;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if (threads > rows) threads = (int)rows;
    for (int i = 0; i < threads; i++) {
        jobs[i] = base;
        jobs[i].row0 = rows * i / threads;
        jobs[i].row1 = rows * (i + 1) / threads;
        started[i] = i > 0 && pthread_create(&ids[i], NULL, fn, &jobs[i]) == 0;
    }
    for (int i = 1; i < threads; i++)
        if (!started[i]) fn(&jobs[i]); /* could not start a thread: do its share here */
    if (threads > 0) fn(&jobs[0]);
    for (int i = 1; i < threads; i++)
        if (started[i]) pthread_join(ids[i], NULL);
}
#endif

void winograd_input(const float *x, float *v, long C, long D, long H, long W, long bd0, long bd1, int threads) {
    job_t job = {x, NULL, v, C, D, H, W, bd0, bd1, 0, 0};
    split(job, threads, run_input);
}

void winograd_output(const float *m, const float *bias, float *out, long C, long D, long H, long W, long bd0,
                     long bd1, int threads) {
    job_t job = {m, bias, out, C, D, H, W, bd0, bd1, 0, 0};
    split(job, threads, run_output);
}
