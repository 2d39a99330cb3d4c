# Raw corpus -> document split -> tokenizer -> token shards. Preparation and tokenization are
# scattered over data.shards jobs ({shard} = 00000, 00001, ...), each gathered by an index job.


rule prepare_corpus:
    input:
        get_corpus_files_of_shard,
    output:
        train="data/prepared/train-{shard}.jsonl",
        val="data/prepared/val-{shard}.jsonl",
        manifest="data/prepared/manifest-{shard}.json",
    log:
        "data/prepared/prepare_corpus-{shard}.log",
    benchmark:
        "data/prepared/prepare_corpus-{shard}.benchmark.tsv"
    params:
        params_slice=get_params_slice("prepare_corpus"),
    shell:
        'archscale prepare_corpus --params "$ARCHSCALE_PARAMS" --shard {wildcards.shard} --out data/prepared --log {log}'


rule index_corpus:
    input:
        expand("data/prepared/manifest-{shard}.json", shard=SHARDS),
    output:
        "data/prepared/manifest.json",
    log:
        "data/prepared/index_corpus.log",
    benchmark:
        "data/prepared/index_corpus.benchmark.tsv"
    shell:
        'archscale index_corpus --params "$ARCHSCALE_PARAMS" --out data/prepared --log {log}'


rule train_tokenizer:
    input:
        manifest="data/prepared/manifest.json",
        train=expand("data/prepared/train-{shard}.jsonl", shard=SHARDS),
    output:
        directory("data/tokenizer/hf"),
    log:
        "data/tokenizer/train_tokenizer.log",
    benchmark:
        "data/tokenizer/train_tokenizer.benchmark.tsv"
    params:
        params_slice=get_params_slice("train_tokenizer"),
    shell:
        'archscale train_tokenizer --params "$ARCHSCALE_PARAMS" --prepared data/prepared --out {output} --log {log}'


rule tokenize:
    input:
        train="data/prepared/train-{shard}.jsonl",
        val="data/prepared/val-{shard}.jsonl",
        tokenizer="data/tokenizer/hf",
    output:
        train="data/shards/train-{shard}.bin",
        val="data/shards/val-{shard}.bin",
        part="data/shards/part-{shard}.json",
    log:
        "data/shards/tokenize-{shard}.log",
    benchmark:
        "data/shards/tokenize-{shard}.benchmark.tsv"
    threads: 8  # capped by --cores locally; Slurm size in workflow/profiles/default
    shell:
        "RAYON_NUM_THREADS={threads} archscale tokenize --prepared data/prepared --tokenizer {input.tokenizer}"
        " --out data/shards --shard {wildcards.shard} --log {log}"


# Also checks that every run of the grid stays within data.max_epochs of the train tokens: no
# meta.json (so no pretraining) otherwise.
rule index_shards:
    input:
        expand("data/shards/part-{shard}.json", shard=SHARDS),
    output:
        "data/shards/meta.json",
    log:
        "data/shards/index_shards.log",
    benchmark:
        "data/shards/index_shards.benchmark.tsv"
    shell:
        'archscale index_shards --params "$ARCHSCALE_PARAMS" --out data/shards --log {log}'
