// Input for the benchmark's "real program" workload: clang++ -O2 -c compiles
// this file while a heap profiler watches clang. It is an ordinary small C++
// program (a word-frequency index over a tiny document store) so that the
// compiler does the usual work: parse standard headers, instantiate
// templates, optimise. It is never run.
#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace store {

struct Document {
	std::string title;
	std::vector<std::string> words;
};

class Index {
public:
	void add(std::unique_ptr<Document> doc)
	{
		size_t id = docs_.size();
		for (const auto &w : doc->words)
			postings_[w].push_back(id);
		docs_.push_back(std::move(doc));
	}

	std::vector<size_t> lookup(const std::string &word) const
	{
		auto it = postings_.find(word);
		if (it == postings_.end())
			return {};
		std::vector<size_t> ids = it->second;
		std::sort(ids.begin(), ids.end());
		ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
		return ids;
	}

	std::map<std::string, size_t> frequencies() const
	{
		std::map<std::string, size_t> out;
		for (const auto &kv : postings_)
			out[kv.first] = kv.second.size();
		return out;
	}

	std::vector<std::pair<std::string, size_t>> top(size_t n) const
	{
		auto f = frequencies();
		std::vector<std::pair<std::string, size_t>> v(f.begin(), f.end());
		std::stable_sort(v.begin(), v.end(), [](const auto &a, const auto &b) {
			return a.second > b.second;
		});
		if (v.size() > n)
			v.resize(n);
		return v;
	}

	const Document *get(size_t id) const
	{
		return id < docs_.size() ? docs_[id].get() : nullptr;
	}

private:
	std::vector<std::unique_ptr<Document>> docs_;
	std::unordered_map<std::string, std::vector<size_t>> postings_;
};

std::vector<std::string> split(const std::string &text)
{
	std::vector<std::string> out;
	std::string cur;
	for (char c : text) {
		if (c == ' ' || c == '\n' || c == '\t') {
			if (!cur.empty())
				out.push_back(cur);
			cur.clear();
		} else {
			cur += static_cast<char>(c | 0x20);
		}
	}
	if (!cur.empty())
		out.push_back(cur);
	return out;
}

} // namespace store

int index_main(int argc, char **argv)
{
	store::Index idx;
	for (int i = 1; i < argc; i++) {
		auto doc = std::make_unique<store::Document>();
		doc->title = argv[i];
		doc->words = store::split(argv[i]);
		idx.add(std::move(doc));
	}
	size_t total = 0;
	for (const auto &kv : idx.top(10))
		total += kv.second + idx.lookup(kv.first).size();
	const store::Document *d = idx.get(0);
	return static_cast<int>(total + (d ? d->title.size() : 0));
}
