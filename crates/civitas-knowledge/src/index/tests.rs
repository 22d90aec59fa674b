use super::*;

fn info(collection_id: i64, level_rank: u8) -> DocumentInfo {
    DocumentInfo {
        collection_id,
        level_rank,
        created_at: 1_000,
        metadata: Vec::new(),
    }
}

fn unit(values: &[f32]) -> Vec<f32> {
    let norm = values.iter().map(|v| v * v).sum::<f32>().sqrt();
    values.iter().map(|v| v / norm).collect()
}

fn chunk(chunk_id: i64, document_id: i64, collection_id: i64, text: &str, vector: &[f32]) -> IndexedChunk {
    IndexedChunk {
        chunk_id,
        document_id,
        collection_id,
        text: text.to_owned(),
        language: Language::detect(text),
        vector: Some(unit(vector)),
    }
}

fn filter(collections: &[i64]) -> Filter {
    Filter {
        collections: collections.iter().copied().collect(),
        max_level_rank: u8::MAX,
        ..Filter::default()
    }
}

fn sample() -> Index {
    let mut index = Index::new(3);
    index.insert_document(
        1,
        info(10, 0),
        vec![
            chunk(
                101,
                1,
                10,
                "Annual leave is twenty-five days for every employee of the agency.",
                &[1.0, 0.0, 0.0],
            ),
            chunk(
                102,
                1,
                10,
                "Sick leave requires a medical certificate after three days.",
                &[0.9, 0.1, 0.0],
            ),
        ],
    );
    index.insert_document(
        2,
        info(20, 0),
        vec![chunk(
            201,
            2,
            20,
            "Travel by train is reimbursed in second class; leave the car at home.",
            &[0.0, 1.0, 0.0],
        )],
    );
    index.insert_document(
        3,
        info(10, 2),
        vec![chunk(
            301,
            3,
            10,
            "Secret annual leave arrangements for the director.",
            &[1.0, 0.0, 0.1],
        )],
    );
    index
}

fn search(index: &Index, query: &str, vector: Option<&[f32]>, method: Method, filter: &Filter) -> Vec<Hit> {
    index.search(&SearchRequest {
        query,
        vector,
        method,
        k: 5,
        rrf_k: 60.0,
        fusion: Fusion::Rrf,
        score_threshold: None,
        filter,
    })
}

#[test]
fn lexical_search_ranks_by_bm25_and_sees_only_allowed_collections() {
    let index = sample();
    let hits = search(&index, "annual leave", None, Method::Lexical, &filter(&[10, 20]));
    let ids: Vec<i64> = hits.iter().map(|hit| hit.chunk_id).collect();
    // The two passages about annual leave come first.
    assert_eq!(
        ids[..2].iter().copied().collect::<HashSet<_>>(),
        HashSet::from([101, 301]),
        "{hits:?}"
    );
    assert!(ids.contains(&201) && ids.contains(&102));
    assert!(hits.windows(2).all(|pair| pair[0].score >= pair[1].score));
    // Collection 20 is not allowed: its passage is never scored.
    let hits = search(
        &index,
        "train travel leave",
        None,
        Method::Lexical,
        &filter(&[10]),
    );
    assert!(hits.iter().all(|hit| hit.collection_id == 10), "{hits:?}");
    assert!(search(&index, "annual leave", None, Method::Lexical, &filter(&[])).is_empty());
}

#[test]
fn classification_above_the_callers_rank_is_invisible() {
    let index = sample();
    let mut limited = filter(&[10, 20]);
    limited.max_level_rank = 1;
    for method in [Method::Lexical, Method::Semantic, Method::Hybrid] {
        let hits = search(
            &index,
            "secret director leave",
            Some(&unit(&[1.0, 0.0, 0.1])),
            method,
            &limited,
        );
        assert!(
            hits.iter().all(|hit| hit.document_id != 3),
            "{method:?}: {hits:?}"
        );
    }
    let hits = search(&index, "secret director", None, Method::Lexical, &filter(&[10]));
    assert_eq!(hits[0].document_id, 3);
}

#[test]
fn semantic_search_orders_by_cosine_and_honours_the_threshold() {
    let index = sample();
    let query = unit(&[0.0, 1.0, 0.0]);
    let hits = search(&index, "", Some(&query), Method::Semantic, &filter(&[10, 20]));
    assert_eq!(hits[0].chunk_id, 201);
    assert!((hits[0].score - 1.0).abs() < 1e-5);
    let strict = index.search(&SearchRequest {
        query: "",
        vector: Some(&query),
        method: Method::Semantic,
        k: 5,
        rrf_k: 60.0,
        fusion: Fusion::Rrf,
        score_threshold: Some(0.5),
        filter: &filter(&[10, 20]),
    });
    assert_eq!(
        strict.iter().map(|hit| hit.chunk_id).collect::<Vec<_>>(),
        vec![201]
    );
}

#[test]
fn hybrid_fuses_both_lists_by_reciprocal_rank() {
    let index = sample();
    // Lexically "medical certificate" is only 102; semantically the query
    // is closest to 201. Both must be in the fused list, each with the
    // rank it had.
    let hits = search(
        &index,
        "medical certificate",
        Some(&unit(&[0.0, 1.0, 0.0])),
        Method::Hybrid,
        &filter(&[10, 20]),
    );
    let lexical = hits.iter().find(|hit| hit.chunk_id == 102).unwrap();
    assert_eq!(lexical.lexical_rank, Some(1));
    let semantic = hits.iter().find(|hit| hit.chunk_id == 201).unwrap();
    assert_eq!(semantic.semantic_rank, Some(1));
    // 102 is first lexically and second semantically: it wins the fusion.
    assert_eq!(hits[0].chunk_id, 102);
    let expected = 1.0 / 61.0 + 1.0 / 62.0;
    assert!((hits[0].score - expected).abs() < 1e-6, "{}", hits[0].score);
}

#[test]
fn removed_documents_disappear_and_compaction_keeps_the_rest_intact() {
    let mut index = Index::new(3);
    for document in 0..400i64 {
        let text = format!("Programme P{document} grants support rural libraries; code X{document}.");
        let chunks = (0..4)
            .map(|n| {
                chunk(
                    document * 10 + n,
                    document,
                    1,
                    &text,
                    &[1.0, document as f32, n as f32],
                )
            })
            .collect();
        index.insert_document(document, info(1, 0), chunks);
    }
    assert_eq!(index.len(), 1_600);
    for document in 0..300 {
        index.remove_document(document);
    }
    // Compaction ran (more than a quarter dead): what is left still answers.
    assert_eq!(index.len(), 400);
    assert!(index.slots.len() < 1_600, "compacted");
    let hits = search(&index, "X350", None, Method::Lexical, &filter(&[1]));
    assert!(!hits.is_empty());
    assert!(hits.iter().all(|hit| hit.document_id == 350), "{hits:?}");
    let hits = search(&index, "X10", None, Method::Lexical, &filter(&[1]));
    assert!(hits.is_empty(), "{hits:?}");
    assert_eq!(index.remove_collection(1), 400);
    assert!(index.is_empty());
}

#[test]
fn reinserting_a_document_replaces_its_passages() {
    let mut index = sample();
    index.insert_document(
        1,
        info(10, 0),
        vec![chunk(
            105,
            1,
            10,
            "Parental leave lasts sixteen weeks.",
            &[0.0, 0.0, 1.0],
        )],
    );
    let hits = search(&index, "annual leave", None, Method::Lexical, &filter(&[10, 20]));
    assert!(
        hits.iter().all(|hit| hit.chunk_id != 101 && hit.chunk_id != 102),
        "{hits:?}"
    );
    assert_eq!(
        search(&index, "parental", None, Method::Lexical, &filter(&[10]))[0].chunk_id,
        105
    );
}

#[test]
fn filters_on_documents_dates_and_metadata_apply_inside_the_search() {
    let mut index = Index::new(3);
    for document in 0..3i64 {
        let mut document_info = info(1, 0);
        document_info.created_at = 1_000 * document;
        document_info.metadata = vec![("region".into(), format!("r{document}"))];
        index.insert_document(
            document,
            document_info,
            vec![chunk(document, document, 1, "budget notice", &[1.0, 0.0, 0.0])],
        );
    }
    let mut only = filter(&[1]);
    only.created_after = Some(1_000);
    let ids = |hits: Vec<Hit>| hits.iter().map(|hit| hit.document_id).collect::<HashSet<_>>();
    assert_eq!(
        ids(search(&index, "budget", None, Method::Lexical, &only)),
        HashSet::from([1, 2])
    );
    only.metadata = vec![("region".into(), "r2".into())];
    assert_eq!(
        ids(search(&index, "budget", None, Method::Lexical, &only)),
        HashSet::from([2])
    );
    let mut documents = filter(&[1]);
    documents.documents = Some(HashSet::from([0]));
    assert_eq!(
        ids(search(&index, "budget", None, Method::Hybrid, &documents)),
        HashSet::from([0])
    );
}

#[test]
fn relative_fusion_trusts_a_list_whose_best_is_far_ahead() {
    let mut index = Index::new(3);
    // Two near-identical notices; only the code differs. Semantically the
    // wrong one is a hair closer; lexically the code decides.
    index.insert_document(
        1,
        info(1, 0),
        vec![chunk(
            1,
            1,
            1,
            "Grant notice GP-4306: applications close on 8 June.",
            &[1.0, 0.1, 0.0],
        )],
    );
    index.insert_document(
        2,
        info(1, 0),
        vec![chunk(
            2,
            2,
            1,
            "Grant notice GP-9999: applications close on 3 May.",
            &[1.0, 0.0, 0.0],
        )],
    );
    index.insert_document(
        3,
        info(1, 0),
        vec![chunk(
            3,
            3,
            1,
            "Office opening hours and counters.",
            &[0.0, 0.0, 1.0],
        )],
    );
    let query = unit(&[1.0, 0.0, 0.0]);
    let hits = index.search(&SearchRequest {
        query: "closing date GP-4306",
        vector: Some(&query),
        method: Method::Hybrid,
        k: 3,
        rrf_k: 60.0,
        fusion: Fusion::DEFAULT,
        score_threshold: None,
        filter: &filter(&[1]),
    });
    assert_eq!(hits[0].chunk_id, 1, "{hits:?}");
    assert!(
        hits.iter().all(|hit| (0.0..=1.0).contains(&hit.score)),
        "{hits:?}"
    );
}
